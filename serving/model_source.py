"""Models from the MLflow registry by alias, with a local cache so the service starts when the registry is down.

``RegistryModelSource`` resolves ``models:/<name>-<kind>@<alias>`` in the registry, downloads the version into
``<model_cache_dir>/<name>-<kind>/v<version>/`` once, and records which version last passed its smoke check
(``<alias>.json``). When the tracking server cannot be reached the service starts from that cached version,
and a reload keeps whatever is loaded. The registry answering "no such model/alias" is not an outage: it is
reported as ``not_found`` and the cache is not used.

A tracking server that accepts connections but never answers is an outage too: every look-up at an HTTP(S)
tracking server runs under a deadline (``deadline_s``, ``ORDERPULSE_REGISTRY_DEADLINE_S``, default 5 s); past it the look-up counts
as unreachable and the cache is used. While a timed-out look-up is still pending, the next one (the other
model kind, the next reload) fails at once instead of waiting again, so a start or reload waits at most about
one deadline in all.

Metadata served by ``GET /v1/models`` comes from the model version and its run: the run's metrics, and the
training data fingerprint from the first of ``FINGERPRINT_KEYS`` found in the version tags, run tags or run
params.

mlflow is imported lazily (only when a fetch talks to the registry), so importing ``serving`` stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from serving.models import (
    LoadedModel,
    Loader,
    ModelSource,
    ModelUnavailableError,
    RefusedVersionError,
    RegistryUnreachableError,
)
from training.registry import registered_name

if TYPE_CHECKING:
    from serving.settings import Settings

__all__ = ["RegistryModelSource", "FINGERPRINT_KEYS"]

_log = logging.getLogger("orderpulse.serving.registry")

#: tag / param names under which training logs the fingerprint of its training data (first found wins)
FINGERPRINT_KEYS: tuple[str, ...] = (
    "data_fingerprint",
    "training_data_fingerprint",
    "data.fingerprint",
    "fingerprint",
)


class RegistryModelSource(ModelSource):
    """Models from the MLflow registry by alias, with a local cache for when the registry is unreachable."""

    def __init__(
        self,
        *,
        model_name: str,
        tracking_uri: str,
        cache_dir: str | Path,
        alias: str = "champion",
        loader: Loader | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        keep_versions: int = 3,
        deadline_s: float | None = 5.0,
    ) -> None:
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.cache_dir = Path(cache_dir)
        self.alias = alias
        self.loader = loader or _pyfunc_loader
        self.timeout_s = timeout_s
        self.keep_versions = keep_versions
        self.max_retries = max_retries
        self.deadline_s = deadline_s
        self._pending: threading.Thread | None = None  # a timed-out look-up that has not returned yet

    @classmethod
    def from_settings(cls, settings: Settings, *, loader: Loader | None = None) -> RegistryModelSource:
        return cls(
            model_name=settings.model_name,
            tracking_uri=settings.tracking_uri,
            cache_dir=settings.model_cache_dir,
            alias=settings.model_alias,
            loader=loader,
            timeout_s=settings.registry_timeout_s,
            max_retries=settings.registry_max_retries,
            deadline_s=settings.registry_deadline_s,
        )

    def registered_name(self, kind: str) -> str:
        return registered_name(self.model_name, kind)

    def fetch(self, kind: str, current: LoadedModel | None, refused: Collection[str] = ()) -> LoadedModel:
        name = self.registered_name(kind)
        try:
            meta = self._resolve_within_deadline(name)
        except RegistryUnreachableError as exc:
            if current is not None:  # keep serving what is loaded; the next reload tries again
                raise
            cached = self._load_cached(kind, name)
            if cached is None:
                raise RegistryUnreachableError(
                    f"{exc}; and there is no cached copy of {name}@{self.alias} in {self.cache_dir}"
                ) from exc
            _log.warning(
                "registry unreachable (%s); serving %s v%s from the cache", exc, name, cached.version
            )
            return cached
        if current is not None and current.name == name and current.version == meta["version"]:
            return current
        if meta["version"] in refused:
            raise RefusedVersionError(name, meta["version"])
        path = self._download(name, meta)
        return self._load(kind, path, meta, source="registry")

    def promote(self, loaded: LoadedModel) -> None:
        if loaded.source not in ("registry", "cache"):
            return
        folder = self.cache_dir / loaded.name
        _write_json_atomic(folder / f"{self.alias}.json", {"version": loaded.version})
        self._prune(folder, keep=loaded.version)

    # ------------------------------------------------------------------ registry
    def _resolve_within_deadline(self, name: str) -> dict[str, Any]:
        """``_resolve(name)`` in a daemon thread, given up after ``deadline_s`` (see the module docstring)."""
        if self.deadline_s is None or urlparse(self.tracking_uri).scheme not in ("http", "https"):
            return self._resolve(name)  # a local store (sqlite, file) has no server that could hang
        where = _safe_uri(self.tracking_uri)
        pending = self._pending
        if pending is not None and pending.is_alive():
            raise RegistryUnreachableError(
                f"the registry at {where} has not answered an earlier request (over {self.deadline_s:g} s)"
            )
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["meta"] = self._resolve(name)
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"orderpulse-registry-{name}", daemon=True)
        thread.start()
        thread.join(self.deadline_s)
        if thread.is_alive():
            self._pending = thread
            raise RegistryUnreachableError(
                f"the registry at {where} did not answer for {name}@{self.alias} within {self.deadline_s:g} s "
                "(ORDERPULSE_REGISTRY_DEADLINE_S)"
            )
        if "error" in box:
            raise box["error"]
        return box["meta"]

    def _resolve(self, name: str) -> dict[str, Any]:
        """Ask the registry which version carries the alias, and collect its metadata."""
        self._probe()
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        try:
            mv = client.get_model_version_by_alias(name, self.alias)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise ModelUnavailableError(
                    f"the registry at {_safe_uri(self.tracking_uri)} has no {name}@{self.alias}: register and alias "
                    f"a model version (training does) ({' '.join(str(exc).split())[:200]})"
                ) from exc
            raise RegistryUnreachableError(
                f"the registry at {_safe_uri(self.tracking_uri)} failed: {' '.join(str(exc).split())[:300]}"
            ) from exc
        except Exception as exc:  # connection errors, a locked or broken backend store...
            raise RegistryUnreachableError(
                f"the registry at {_safe_uri(self.tracking_uri)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        metrics: dict[str, float] = {}
        tags = dict(mv.tags or {})
        params: dict[str, str] = {}
        if mv.run_id:
            try:
                run = client.get_run(mv.run_id)
                metrics.update(run.data.metrics)
                tags = {**run.data.tags, **tags}
                params = dict(run.data.params)
            except Exception as exc:  # metadata only: the model is still servable
                _log.warning("could not read run %s of %s v%s: %s", mv.run_id, name, mv.version, exc)
        fingerprint = next((tags[k] for k in FINGERPRINT_KEYS if k in tags), None) or next(
            (params[k] for k in FINGERPRINT_KEYS if k in params), None
        )
        return {
            "name": name,
            "version": str(mv.version),
            "alias": self.alias,
            "run_id": mv.run_id,
            "data_fingerprint": fingerprint,
            "metrics": metrics,
            "model_uri": f"models:/{name}/{mv.version}",
            "download_uri": client.get_model_version_download_uri(name, mv.version),
        }

    def _probe(self) -> None:
        """Fail fast (one TCP connect) when an HTTP tracking server is down, instead of MLflow's retries."""
        parsed = urlparse(self.tracking_uri)
        if parsed.scheme not in ("http", "https"):
            return
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection(
                (parsed.hostname or "localhost", port), timeout=min(self.timeout_s, 5.0)
            ):
                pass
        except OSError as exc:
            raise RegistryUnreachableError(
                f"the tracking server {_safe_uri(self.tracking_uri)} is unreachable ({exc})"
            ) from exc
        # MLflow reads its HTTP retry policy from the environment only; its default (7 retries with
        # exponential backoff) would hold a start or reload for minutes when the server misbehaves. An
        # explicit MLFLOW_HTTP_REQUEST_* setting in the environment wins.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.max_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(self.timeout_s))))

    def _download(self, name: str, meta: dict[str, Any]) -> Path:
        """Download the version's artifacts into the cache once (atomic rename; safe across workers)."""
        folder = self.cache_dir / name
        final = folder / f"v{meta['version']}"
        if (final / "meta.json").is_file():
            return final
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{meta['version']}-", dir=folder))
        try:
            import mlflow.artifacts

            from training.tracking import quiet_mlflow

            quiet_mlflow()  # no tqdm bars of the download in the service log
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=meta["download_uri"],
                dst_path=str(tmp / "download"),
                tracking_uri=self.tracking_uri,
            )
            os.rename(local, tmp / "model")  # the download keeps the artifact folder's own name; normalise it
            shutil.rmtree(tmp / "download", ignore_errors=True)
            if not (tmp / "model" / "MLmodel").is_file():
                raise FileNotFoundError(
                    f"{meta['name']} v{meta['version']} at {meta['download_uri']} has no MLmodel file: register "
                    "the directory of an MLflow model (mlflow.pyfunc.log_model output), not a run folder"
                )
            stored = {k: v for k, v in meta.items() if k != "download_uri"}
            (tmp / "meta.json").write_text(json.dumps(stored, indent=2, sort_keys=True))
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "meta.json").is_file():  # not another worker's complete copy: a real error
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    # ------------------------------------------------------------------ cache
    def _load_cached(self, kind: str, name: str) -> LoadedModel | None:
        pointer = self.cache_dir / name / f"{self.alias}.json"
        if not pointer.is_file():
            return None
        version = str(json.loads(pointer.read_text())["version"])
        path = self.cache_dir / name / f"v{version}"
        if not (path / "meta.json").is_file():
            return None
        meta = json.loads((path / "meta.json").read_text())
        return self._load(kind, path, meta, source="cache")

    def _load(self, kind: str, path: Path, meta: dict[str, Any], *, source: str) -> LoadedModel:
        model = self.loader(str(path / "model"))
        return LoadedModel(
            kind=kind,
            name=meta["name"],
            version=str(meta["version"]),
            model=model,
            alias=meta.get("alias"),
            run_id=meta.get("run_id"),
            data_fingerprint=meta.get("data_fingerprint"),
            metrics=MappingProxyType(dict(meta.get("metrics") or {})),
            source=source,
            model_uri=meta.get("model_uri"),
        )

    def _prune(self, folder: Path, *, keep: str) -> None:
        """Keep the served version and the ``keep_versions - 1`` newest others (older ones are deleted)."""
        versions = sorted(
            (p for p in folder.glob("v*") if p.is_dir() and p.name[1:].isdigit()),
            key=lambda p: int(p.name[1:]),
        )
        others = [p for p in versions if p.name != f"v{keep}"]
        for p in others[: max(0, len(others) - (self.keep_versions - 1))]:
            shutil.rmtree(p, ignore_errors=True)


def _pyfunc_loader(path: str) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path)


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


def _safe_uri(uri: str) -> str:
    """The URI without credentials, for messages."""
    parsed = urlparse(uri)
    if parsed.password or parsed.username:
        host = parsed.hostname or ""
        return parsed._replace(netloc=host + (f":{parsed.port}" if parsed.port else "")).geturl()
    return uri
