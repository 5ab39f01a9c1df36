"""Run the service: ``serve(host, port, workers)``, and the ``keys`` helpers, for the ``orderpulse`` command line.

``orderpulse/cli.py`` exposes them with::

    app.add_typer(serving.cli.keys_app, name="keys")       # orderpulse keys hash / orderpulse keys new
    app.command("serve")(serving.cli.serve_command)        # orderpulse serve --host --port --workers

With one worker the app object is built here from ``settings``; with several, uvicorn starts each worker from
the import string ``serving.app:create_app_from_env`` and the settings travel as ``ORDERPULSE_*`` variables
(hashed keys only, so a generated dev key is valid in every worker); the listening socket is bound here
(``run_workers``: uvicorn's own would leave Nagle's algorithm on, +40 ms per response). The socket is bound
before anything starts, so a busy port is one clear error (``PortInUseError``, exit 2 in the CLI). Workers die
with the supervisor (``serving.process``), so a restart after ``kill -9`` of the master finds the port free.
"""

from __future__ import annotations

import os
import socket
import sys

import typer

from features.errors import OrderPulseError
from serving.auth import generate_api_key, hash_api_key
from serving.process import SUPERVISOR_PID_ENV
from serving.settings import Settings

__all__ = [
    "serve",
    "PortInUseError",
    "serve_command",
    "run_workers",
    "tcp_listen_socket",
    "keys_app",
    "hash_key_command",
    "new_key_command",
]

APP_FACTORY = "serving.app:create_app_from_env"


class PortInUseError(OrderPulseError):
    """The address to listen on cannot be bound (another process holds the port, or no permission)."""


keys_app = typer.Typer(
    help="Create API keys and the hashes ORDERPULSE_API_KEYS stores.", no_args_is_help=True
)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    settings: Settings | None = None,
    log_level: str = "info",
    print_generated_key: bool = True,
) -> None:
    """Serve the app with uvicorn until interrupted (blocks)."""
    import uvicorn

    if workers < 1:
        raise ValueError(
            f"workers must be >= 1, got {workers}; use 1 on a small machine, about one per core at most"
        )
    settings = settings or Settings()
    if settings.generated_api_key and print_generated_key:
        typer.echo(
            f"profile dev and no ORDERPULSE_API_KEYS: API key for this run: {settings.generated_api_key}\n"
            f"  send it as 'X-API-Key: <key>'; for a fixed key set ORDERPULSE_API_KEYS (see `orderpulse keys new`)",
            err=True,
        )
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "log_config": _log_config(log_level),
        "proxy_headers": True,
        "server_header": False,
        "timeout_keep_alive": settings.keep_alive_s,
    }
    if workers == 1:
        from serving.app import create_app

        config = uvicorn.Config(create_app(settings), **common)
        sock = tcp_listen_socket(config.host, config.port)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled: a clean stop (as uvicorn.run)
            pass
        finally:
            sock.close()
        return
    os.environ.update(settings.to_env())
    run_workers(workers, {**common, "timeout_worker_healthcheck": settings.worker_healthcheck_timeout_s})


def run_workers(workers: int, options: dict) -> None:
    """``uvicorn.run(APP_FACTORY, factory=True, workers=N)``, with a listening socket made for TCP.

    uvicorn binds ``socket.socket(AF_INET)`` (protocol 0) for its workers, and asyncio sets ``TCP_NODELAY`` only
    on connections accepted from a socket created with ``IPPROTO_TCP``; with several workers (and no uvloop)
    Nagle's algorithm then held every response for a delayed ACK: 44 ms for ``/health`` instead of 1 ms.
    Binding the socket here with ``IPPROTO_TCP`` (inherited by the workers and their accepted connections)
    restores ``TCP_NODELAY``; uvicorn's own supervisor still starts, watches and stops the workers. (uvloop,
    installed by default, sets ``TCP_NODELAY`` itself; the socket matters where uvicorn falls back to asyncio.)
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options)
    sock = tcp_listen_socket(config.host, config.port)
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def tcp_listen_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket, protocol ``IPPROTO_TCP`` so accepted connections get TCP_NODELAY.

    Raises ``PortInUseError`` (one line: the address, the reason, what to do) when it cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUseError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop the process that holds the port "
            "(e.g. `ss -ltnp | grep :" + str(port) + "`) or choose another --port"
        ) from exc
    sock.set_inheritable(True)
    return sock


def serve_command(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for all)"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes (each loads the models)"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve the prediction API (settings from ORDERPULSE_* environment variables)."""
    serve(host, port, workers, log_level=log_level)


def _log_config(log_level: str) -> dict:
    """uvicorn's logging config plus the ``orderpulse`` loggers on the same handler (model loads, auth...)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["orderpulse"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


@keys_app.command("hash")
def hash_key_command(
    key: str = typer.Argument(None, help="the key to hash; omit it to read the key from standard input"),
) -> None:
    """Print the SHA-256 hash of an API key, the value ORDERPULSE_API_KEYS stores."""
    if key is None:
        key = sys.stdin.readline() if not sys.stdin.isatty() else typer.prompt("API key", hide_input=True)
    key = key.strip()
    if not key:
        raise typer.BadParameter("the key is empty: pass the key, or generate one with `orderpulse keys new`")
    typer.echo(hash_api_key(key))


@keys_app.command("new")
def new_key_command() -> None:
    """Generate a random API key: give the key to the client, put the hash in ORDERPULSE_API_KEYS."""
    key = generate_api_key()
    typer.echo(f"key:  {key}\nhash: {hash_api_key(key)}")
