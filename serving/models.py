"""The served models: loaded from the MLflow registry by alias, cached locally, swapped atomically.

``ModelHolder`` keeps an immutable ``ModelSnapshot`` of every loaded kind (``"forecast"``, ``"anomaly"``). A
request takes the current snapshot once at its start (``ModelsDep``) and uses that object to its end, so a
reload that happens meanwhile never gives it a mixed pair of models or a half-loaded one: a reload builds and
checks all its new models first, then replaces the snapshot in one assignment.

A new model replaces the old one only after the smoke check for its kind passed (a callable given to the
holder, e.g. "predict one known order"); otherwise the old model stays and the failure is reported in the
``ReloadReport`` (and logged, and counted in metrics).

``RegistryModelSource`` resolves ``models:/<name>-<kind>@<alias>`` in the registry, downloads the version into
``<model_cache_dir>/<name>-<kind>/v<version>/`` once, and records which version last passed its smoke check
(``<alias>.json``). When the tracking server cannot be reached the service starts from that cached version,
and a reload keeps whatever is loaded. The registry answering "no such model/alias" is not an outage: it is
reported as ``not_found`` and the cache is not used.

mlflow is imported lazily (only when a registry source fetches), so importing ``serving`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from serving.errors import ModelNotLoadedError

if TYPE_CHECKING:
    from serving.settings import Settings

__all__ = [
    "LoadedModel",
    "ModelSnapshot",
    "ModelHolder",
    "ModelSource",
    "RegistryModelSource",
    "ReloadReport",
    "KindOutcome",
    "SmokeCheck",
    "ModelUnavailableError",
    "RegistryUnreachableError",
    "RefusedVersionError",
    "FINGERPRINT_KEYS",
]

Outcome = Literal["loaded", "unchanged", "refused", "failed", "not_found"]
SmokeCheck = Callable[["LoadedModel"], object]
Loader = Callable[[str], Any]

#: tag / param names under which training logs the fingerprint of its training data (first found wins)
FINGERPRINT_KEYS: tuple[str, ...] = (
    "data_fingerprint",
    "training_data_fingerprint",
    "data.fingerprint",
    "fingerprint",
)

_log = logging.getLogger("orderpulse.serving.models")


class ModelUnavailableError(LookupError):
    """The registry answered that the model or alias does not exist (not an outage: the cache is not used)."""


class RegistryUnreachableError(ConnectionError):
    """The tracking/registry server could not be reached."""


class RefusedVersionError(Exception):
    """The version to serve already failed its smoke check in this process; it is not loaded again."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(
            f"{name} v{version} failed its smoke check earlier and is not retried (registered versions do not "
            "change): point the alias at a fixed version"
        )
        self.version = version


@dataclass(frozen=True)
class LoadedModel:
    """A model in memory plus what the registry says about it."""

    kind: str
    name: str
    version: str
    model: Any
    alias: str | None = None
    run_id: str | None = None
    data_fingerprint: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    source: str = "memory"  # "registry" | "cache" | "memory"
    model_uri: str | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def describe(self) -> dict[str, Any]:
        """JSON-ready metadata (everything but the model object)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "data_fingerprint": self.data_fingerprint,
            "metrics": dict(self.metrics),
            "source": self.source,
            "model_uri": self.model_uri,
            "loaded_at": self.loaded_at.isoformat(),
        }


@dataclass(frozen=True)
class ModelSnapshot:
    """An immutable set of loaded models; ``generation`` increases with every swap."""

    models: Mapping[str, LoadedModel]
    generation: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))

    def get(self, kind: str) -> LoadedModel:
        """The loaded model of ``kind``; raises ``ModelNotLoadedError`` (HTTP 503) when there is none."""
        try:
            return self.models[kind]
        except KeyError:
            raise ModelNotLoadedError(kind) from None

    def __contains__(self, kind: object) -> bool:
        return kind in self.models

    def missing(self, kinds: Iterable[str]) -> list[str]:
        return [k for k in kinds if k not in self.models]


@dataclass(frozen=True)
class KindOutcome:
    status: Outcome
    version: str | None = None
    previous_version: str | None = None
    source: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did per kind; ``ok`` is False when any kind was refused, failed or not found."""

    outcomes: Mapping[str, KindOutcome]
    generation: int

    @property
    def ok(self) -> bool:
        return all(o.status in ("loaded", "unchanged") for o in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "generation": self.generation,
            "outcomes": {k: o.to_dict() for k, o in self.outcomes.items()},
        }


class ModelSource:
    """Where the holder gets models from. Subclass it (tests use in-memory fakes)."""

    def fetch(self, kind: str, current: LoadedModel | None, refused: Collection[str] = ()) -> LoadedModel:
        """The model that should be served for ``kind``; return ``current`` itself when it is still right.

        Raise ``ModelUnavailableError`` when there is none, ``RefusedVersionError`` (without loading it) when
        the version to serve is one of ``refused`` (it failed its smoke check before), anything else when it
        could not be loaded.
        """
        raise NotImplementedError

    def promote(self, loaded: LoadedModel) -> None:
        """Called after ``loaded`` passed its smoke check and is being served (the registry source caches it)."""


class ModelHolder:
    """Holds the served models and swaps them atomically (see the module docstring)."""

    def __init__(
        self,
        source: ModelSource,
        *,
        kinds: Iterable[str] = ("forecast", "anomaly"),
        smoke_checks: Mapping[str, SmokeCheck] | None = None,
    ) -> None:
        self.source = source
        self.kinds = tuple(kinds)
        self.smoke_checks = dict(smoke_checks or {})
        self._snapshot = ModelSnapshot({}, 0)
        self._reload_lock = threading.Lock()
        self._listeners: list[Callable[[ReloadReport, ModelSnapshot], None]] = []
        self._last_errors: dict[str, str] = {}
        self._refused: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        loader: Loader | None = None,
        smoke_checks: Mapping[str, SmokeCheck] | None = None,
        kinds: Iterable[str] = ("forecast", "anomaly"),
    ) -> ModelHolder:
        """A holder over ``RegistryModelSource`` configured from ``settings``."""
        return cls(
            RegistryModelSource.from_settings(settings, loader=loader), kinds=kinds, smoke_checks=smoke_checks
        )

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> ModelSnapshot:
        """The current snapshot; keep the returned object for the whole request."""
        return self._snapshot

    @property
    def last_errors(self) -> dict[str, str]:
        """Per kind, why the last attempt to load it did not produce a served model (cleared on success)."""
        return dict(self._last_errors)

    def add_listener(self, listener: Callable[[ReloadReport, ModelSnapshot], None]) -> None:
        """``listener(report, snapshot)`` is called after every reload/install (metrics use it)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    # ------------------------------------------------------------------ changing
    def reload(self, kinds: Iterable[str] | None = None) -> ReloadReport:
        """Fetch every kind from the source, smoke-check the new ones, then swap them in together."""
        with self._reload_lock:
            current = self._snapshot
            candidates: dict[str, LoadedModel] = {}
            outcomes: dict[str, KindOutcome] = {}
            for kind in kinds or self.kinds:
                old = current.models.get(kind)
                old_version = old.version if old else None
                try:
                    new = self.source.fetch(kind, old, frozenset(self._refused.get(kind, ())))
                except RefusedVersionError as exc:
                    outcomes[kind] = KindOutcome("refused", old_version, old_version, error=str(exc))
                    continue
                except ModelUnavailableError as exc:
                    outcomes[kind] = KindOutcome("not_found", old_version, old_version, error=str(exc))
                    continue
                except Exception as exc:  # a broken download or loader must not take the service down
                    _log.warning(
                        "loading the %s model failed (%s): %s",
                        kind,
                        f"still serving v{old_version}" if old else "none is served",
                        exc,
                    )
                    outcomes[kind] = KindOutcome("failed", old_version, old_version, error=_describe(exc))
                    continue
                if new is old:
                    outcomes[kind] = KindOutcome(
                        "unchanged", old_version, old_version, old.source if old else None
                    )
                    continue
                candidates[kind] = new
            return self._swap_in(current, candidates, outcomes)

    def install(self, models: Mapping[str, LoadedModel]) -> ReloadReport:
        """Put the given models in service (smoke checks still apply); for tests and tools."""
        with self._reload_lock:
            return self._swap_in(self._snapshot, dict(models), {})

    def start_periodic_reload(self, interval_s: float) -> None:
        """Reload every ``interval_s`` seconds in a daemon thread until ``stop``."""
        if interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    report = self.reload()
                    if not report.ok:
                        _log.info("periodic model reload: %s", report.to_dict()["outcomes"])
                except Exception:  # pragma: no cover - reload already catches per kind
                    _log.exception("periodic model reload failed")

        self._thread = threading.Thread(target=loop, name="orderpulse-model-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic reload thread (if any) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # ------------------------------------------------------------------ internals
    def _swap_in(
        self, current: ModelSnapshot, candidates: dict[str, LoadedModel], outcomes: dict[str, KindOutcome]
    ) -> ReloadReport:
        accepted: dict[str, LoadedModel] = {}
        for kind, new in candidates.items():
            old = current.models.get(kind)
            old_version = old.version if old else None
            error = self._smoke(kind, new)
            if error is not None:
                _log.error(
                    "the %s model %s v%s failed its smoke check and was refused; still serving %s: %s",
                    kind,
                    new.name,
                    new.version,
                    old_version,
                    error,
                )
                self._refused.setdefault(kind, set()).add(new.version)
                outcomes[kind] = KindOutcome(
                    "refused",
                    old_version,
                    old_version,
                    new.source,
                    f"version {new.version} failed the smoke check: {error}",
                )
                continue
            accepted[kind] = new
            outcomes[kind] = KindOutcome("loaded", new.version, old_version, new.source)
        snapshot = current
        if accepted:
            snapshot = ModelSnapshot({**current.models, **accepted}, current.generation + 1)
            self._snapshot = snapshot  # the one atomic step: requests see the old or the new snapshot
            for new in accepted.values():
                try:
                    self.source.promote(new)
                except Exception as exc:  # serving works; only the cache pointer is stale
                    _log.warning("could not record %s v%s in the model cache: %s", new.name, new.version, exc)
        for kind, outcome in outcomes.items():
            if outcome.status in ("loaded", "unchanged"):
                self._last_errors.pop(kind, None)
            elif kind not in snapshot.models:
                self._last_errors[kind] = outcome.error or outcome.status
        report = ReloadReport(MappingProxyType(outcomes), snapshot.generation)
        for listener in self._listeners:
            try:
                listener(report, snapshot)
            except Exception:  # pragma: no cover - a metrics bug must not break reloads
                _log.exception("model reload listener failed")
        return report

    def _smoke(self, kind: str, new: LoadedModel) -> str | None:
        check = self.smoke_checks.get(kind)
        if check is None:
            return None
        try:
            result = check(new)
        except Exception as exc:
            return _describe(exc)
        if result is False:
            return "the smoke check returned False"
        return None


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
    ) -> None:
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.cache_dir = Path(cache_dir)
        self.alias = alias
        self.loader = loader or _pyfunc_loader
        self.timeout_s = timeout_s
        self.keep_versions = keep_versions
        self.max_retries = max_retries

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
        )

    def registered_name(self, kind: str) -> str:
        return f"{self.model_name}-{kind}"

    def fetch(self, kind: str, current: LoadedModel | None, refused: Collection[str] = ()) -> LoadedModel:
        name = self.registered_name(kind)
        try:
            meta = self._resolve(name)
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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
