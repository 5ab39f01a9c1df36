"""The served models: loaded from the MLflow registry by alias, cached locally, swapped atomically.

``ModelHolder`` keeps an immutable ``ModelSnapshot`` of every loaded kind (``"forecast"``, ``"anomaly"``). A
request takes the current snapshot once at its start (``ModelsDep``) and uses that object to its end, so a
reload that happens meanwhile never gives it a mixed pair of models or a half-loaded one: a reload builds and
checks all its new models first, then replaces the snapshot in one assignment.

A new model replaces the old one only after the smoke check for its kind passed (a callable given to the
holder, e.g. "predict one known order"); otherwise the old model stays and the failure is reported in the
``ReloadReport`` (and logged, and counted in metrics).

Where models come from is a ``ModelSource``: ``serving.model_source.RegistryModelSource`` (MLflow registry by
alias, with a local cache for when the registry is unreachable) in the service, in-memory fakes in tests.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from serving.errors import ModelNotLoadedError
from serving.periodic import PeriodicThread

if TYPE_CHECKING:
    pass

__all__ = [
    "LoadedModel",
    "ModelSnapshot",
    "ModelHolder",
    "ModelSource",
    "ReloadReport",
    "KindOutcome",
    "SmokeCheck",
    "Loader",
    "ModelUnavailableError",
    "RegistryUnreachableError",
    "RefusedVersionError",
]

Outcome = Literal["loaded", "unchanged", "refused", "failed", "not_found"]
SmokeCheck = Callable[["LoadedModel"], object]
Loader = Callable[[str], Any]


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
            "metadata": _model_metadata(self.model),
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
        self._reloader = PeriodicThread(
            "orderpulse-model-reload", self._periodic_reload, "periodic model reload failed", _log
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
        self._reloader.start(interval_s)

    def stop(self) -> None:
        """Stop the periodic reload thread (if any) and wait for it."""
        self._reloader.stop()

    def _periodic_reload(self) -> None:
        report = self.reload()
        if not report.ok:
            _log.info("periodic model reload: %s", report.to_dict()["outcomes"])

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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


def _model_metadata(model: Any) -> dict[str, Any]:
    """The ``metadata`` a pyfunc model was logged with (e.g. the anomaly model's threshold policy), or {}."""
    meta = getattr(getattr(model, "metadata", None), "metadata", None)
    return dict(meta) if isinstance(meta, Mapping) else {}
