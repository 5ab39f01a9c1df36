"""Register model versions and move the ``champion`` / ``challenger`` aliases (never the deprecated stages).

Rule applied by ``register``: the new version of ``<name>`` carries its evaluation as version tags
(``metric.<metric>`` = the value, ``eval_key`` = what it was evaluated on: the windows *and* a fingerprint of the
data, ``metric_direction``). Then:

1. **Baseline gate.** With a ``Baseline`` (seasonal naive's WAPE on the same backtest windows, the base rate of
   the validation slice for AUPRC) the version must strictly beat it, else it never becomes champion: it becomes
   ``challenger`` and the version tag ``registry.gate`` says why, naming the evaluation both were computed on
   (``Decision.gate_passed``/``gate``).
2. **Champion comparison on the same evaluation only.** It becomes ``champion`` when there is no champion yet, or
   when its metric is strictly better (lower, or higher with ``higher_is_better=True``) than the champion's on the
   same ``eval_key``. When the champion was evaluated on something else (other windows or other data), the
   ``reevaluate`` callback (if given) evaluates the champion's recipe on this ``eval_key``; the result is compared
   and recorded on the champion as the tag ``registry.reevaluation`` (its own ``metric.*`` tags stay as they
   were). Without a callback, or when it raises ``NotComparableError``, the metrics are not compared.

With ``promote_ties`` (``orderpulse retrain``) a value equal to the champion's is enough. Every other case gives
``challenger``; the returned ``Decision`` reports why in ``reason`` and stores it in the
version tag ``registry.decision``. Aliases then move by hand with ``promote``.

``serving/`` loads ``models:/<name>@champion``; ``resolve`` turns that (or ``models:/<name>/<version>``,
``models:/<name>/latest``, ``runs:/<run_id>/<path>``) into a pinned version with its tags.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from features.errors import OrderPulseError
from training.tracking import configure

__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "ModelNotFoundError",
    "NotComparableError",
    "Baseline",
    "Decision",
    "Comparison",
    "ResolvedModel",
    "register",
    "promote",
    "resolve",
    "metric_tag",
    "registered_name",
    "MODEL_KINDS",
]

MODEL_KINDS = ("forecast", "anomaly")
"""The kinds of registered models: ``<name>-forecast`` and ``<name>-anomaly``."""

CHAMPION = "champion"
CHALLENGER = "challenger"
_EVAL_KEY = "eval_key"
_DIRECTION = "metric_direction"
_DECISION = "registry.decision"
_GATE = "registry.gate"
_REEVALUATION = "registry.reevaluation"


class ModelNotFoundError(OrderPulseError, LookupError):
    """A model name, version, alias or run that the registry does not know."""


class NotComparableError(OrderPulseError, ValueError):
    """Raised by a ``reevaluate`` callback when the champion's recipe cannot be evaluated on the new data."""


@dataclass(frozen=True)
class Baseline:
    """The reference a version must strictly beat to become champion, evaluated on the same ``eval_key``:
    ``Baseline("seasonal naive", 0.238)`` for a backtest WAPE, ``Baseline("the base rate", 0.04)`` for AUPRC."""

    name: str
    value: float


@dataclass(frozen=True)
class Decision:
    """What ``register`` did: the new version, the alias it got and why.

    ``gate`` is the baseline gate's verdict (``None`` when no baseline was given); ``gate_passed`` is False only
    when a baseline was given and not beaten. ``reevaluated`` is True when the champion's metric was computed
    again on this ``eval_key`` (``previous_value`` is then that value).
    """

    name: str
    version: int
    alias: str
    metric: str
    value: float
    eval_key: str
    previous_champion: int | None
    previous_value: float | None
    compared: bool
    reason: str
    gate: str | None = None
    gate_passed: bool = True
    reevaluated: bool = False
    dry_run: bool = False

    def __str__(self) -> str:
        if self.dry_run:
            return f"{self.name} (dry run, not registered) would be @{self.alias}: {self.reason}"
        return f"{self.name} v{self.version} -> @{self.alias}: {self.reason}"

    def summary(self) -> dict[str, object]:
        """What the training commands print of a registration in their JSON line: ``registered``
        (``models:/<name>/<version>``), ``version``, ``alias``, ``decision`` (why), ``gate``, ``gate_passed``,
        ``compared_with`` (the champion version compared with, or None) and ``reevaluated``; a dry run has
        ``registered`` and ``version`` None and ``dry_run`` True."""
        return {
            "registered": None if self.dry_run else f"models:/{self.name}/{self.version}",
            "version": None if self.dry_run else self.version,
            "alias": self.alias,
            "decision": self.reason,
            "gate": self.gate,
            "gate_passed": self.gate_passed,
            "compared_with": self.previous_champion if self.compared else None,
            "reevaluated": self.reevaluated,
            **({"dry_run": True} if self.dry_run else {}),
        }


@dataclass(frozen=True)
class Comparison:
    """An alias moved by hand: the version that held it before and the one holding it now, with their tags."""

    name: str
    alias: str
    old_version: int | None
    new_version: int
    old_metrics: dict[str, float] = field(default_factory=dict)
    new_metrics: dict[str, float] = field(default_factory=dict)
    old_eval_key: str | None = None
    new_eval_key: str | None = None

    @property
    def same_evaluation(self) -> bool:
        return self.old_eval_key is not None and self.old_eval_key == self.new_eval_key

    def __str__(self) -> str:
        lines = [
            f"{self.name}@{self.alias}: v{self.old_version} -> v{self.new_version}"
            if self.old_version is not None
            else f"{self.name}@{self.alias}: (none) -> v{self.new_version}"
        ]
        for key in sorted(set(self.old_metrics) | set(self.new_metrics)):
            lines.append(
                f"  {key}: {self.old_metrics.get(key, float('nan')):.6g} -> "
                f"{self.new_metrics.get(key, float('nan')):.6g}"
            )
        if self.old_version is not None and not self.same_evaluation:
            lines.append(
                f"  note: evaluated differently ({self.old_eval_key!r} vs {self.new_eval_key!r}); "
                "the metrics are not comparable"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved to something pinned: ``uri`` always loads the same artifacts."""

    uri: str
    name: str | None
    version: int | None
    run_id: str | None
    source: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return _metrics_from_tags(self.tags)

    @property
    def label(self) -> str:
        """``"orderpulse-forecast v3 @champion"`` (the URI when the model is not a registered version)."""
        name = f"{self.name} v{self.version}" if self.name else self.uri
        return name + "".join(f" @{a}" for a in self.aliases)


def registered_name(name: str, kind: str) -> str:
    """The registered model (and experiment) of a kind: ``orderpulse`` + ``forecast`` -> ``orderpulse-forecast``.

    A name that already ends in ``-<kind>`` is kept (``orderpulse-anomaly`` stays ``orderpulse-anomaly``). The
    one home of this rule: the training jobs register under it and the server loads from it.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {list(MODEL_KINDS)}. Got {kind!r} instead.")
    return name if name.endswith(f"-{kind}") else f"{name}-{kind}"


def metric_tag(metric: str) -> str:
    """The version tag holding ``metric``: ``backtest_wape`` -> ``metric.backtest_wape``."""
    return metric if metric.startswith("metric.") else f"metric.{metric}"


def register(
    model_uri: str,
    name: str,
    *,
    metric: str,
    value: float,
    eval_key: str,
    higher_is_better: bool = False,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    baseline: Baseline | None = None,
    reevaluate: Callable[[ModelVersion], float] | None = None,
    promote_ties: bool = False,
    dry_run: bool = False,
) -> Decision:
    """Register ``model_uri`` as a new version of ``name`` and give it ``champion`` or ``challenger``.

    ``metric``/``value`` decide (see the module docstring); ``baseline`` is the gate the value must beat;
    ``reevaluate(champion_version)`` returns the champion's ``metric`` on this ``eval_key`` when the champion was
    evaluated on something else (raise ``NotComparableError`` with the reason when it cannot). ``metrics`` are
    further metrics stored as ``metric.<k>`` tags for ``promote``'s comparison; ``tags`` are stored as they are.
    ``promote_ties``: a value equal to the champion's makes the new version champion (a retrain of the champion's
    own recipe on newer data ties on the same windows; the newer fit has seen more). ``dry_run``: decide and
    return the decision (``version`` 0) without registering anything or tagging the champion.

    Nothing is registered until the decision is made (a failing ``reevaluate`` leaves the registry as it was);
    the alias moves last, and a version whose alias could not be set is deleted again.
    """
    if not eval_key or not str(eval_key).strip():
        raise ValueError(
            "eval_key must name the evaluation (e.g. BacktestResult.eval_key()); got an empty value."
        )
    configure()
    client = MlflowClient()
    key = metric_tag(metric)
    value = float(value)
    eval_key = str(eval_key)
    champion = _version_by_alias(client, name, CHAMPION)
    gate, gate_passed = _gate(key, value, baseline, higher_is_better, eval_key)
    version_tags = {
        **{metric_tag(k): repr(float(v)) for k, v in (metrics or {}).items()},
        key: repr(value),
        _EVAL_KEY: eval_key,
        _DIRECTION: "higher_is_better" if higher_is_better else "lower_is_better",
        **({_GATE: gate} if gate is not None else {}),
        **{str(k): str(v) for k, v in (tags or {}).items()},
    }
    prev_version = int(champion.version) if champion is not None else None
    prev_value = _float_or_none(champion.tags.get(key)) if champion is not None else None
    compared = reevaluated = False
    if not gate_passed:
        alias, reason = CHALLENGER, f"never champion: {gate}"
    elif champion is None:
        alias, reason = CHAMPION, "no champion yet" + (f" ({gate})" if gate else "")
    elif math.isnan(value):
        alias, reason = CHALLENGER, f"{key} is NaN: not compared with champion v{prev_version}"
    elif champion.tags.get(_EVAL_KEY) != eval_key and reevaluate is None:
        alias, reason = (
            CHALLENGER,
            (
                f"not compared: champion v{prev_version} was evaluated on {champion.tags.get(_EVAL_KEY)!r}, this "
                f"version on {eval_key!r}; re-evaluate both on the same windows of the same data or use "
                "promote() by hand"
            ),
        )
    else:
        note = ""
        if champion.tags.get(_EVAL_KEY) != eval_key:
            try:
                prev_value = float(reevaluate(champion))  # type: ignore[misc]
            except NotComparableError as exc:
                prev_value = None
                note = str(exc)
            else:
                reevaluated = True
                note = (
                    f"re-evaluated on the same windows of the same data: {eval_key}; the champion's own "
                    f"evaluation was on {champion.tags.get(_EVAL_KEY)}"
                )
        if prev_value is None or math.isnan(prev_value):
            alias, reason = (
                CHALLENGER,
                f"champion v{prev_version} has no usable {key} on this evaluation: not compared"
                + (f" ({note})" if note else "; use promote() to move the alias by hand"),
            )
        else:
            compared = True
            # the decision names what was compared: the windows and the data fingerprint of the eval_key
            note = note or f"both evaluated on {eval_key}"
            better = value > prev_value if higher_is_better else value < prev_value
            tie = value == prev_value and promote_ties
            sign = ">" if higher_is_better else "<"
            suffix = f" ({note})" if note else ""
            if better or tie:
                alias, reason = (
                    CHAMPION,
                    f"{key} {value:.6g} {'=' if tie and not better else sign} champion v{prev_version}'s "
                    f"{prev_value:.6g}{suffix}"
                    + (" (a tie goes to the newer fit)" if tie and not better else ""),
                )
            else:
                alias, reason = (
                    CHALLENGER,
                    f"{key} {value:.6g} does not beat champion v{prev_version}'s {prev_value:.6g}{suffix}",
                )
    decision = Decision(
        name,
        0,
        alias,
        key,
        value,
        eval_key,
        prev_version,
        prev_value,
        compared,
        reason,
        gate=gate,
        gate_passed=gate_passed,
        reevaluated=reevaluated,
        dry_run=dry_run,
    )
    if dry_run:
        return decision
    # everything that can fail slowly (the re-evaluation) is done: register with the decision as a version tag,
    # then move the alias last, so a failure never leaves a new version holding an alias
    mv = mlflow.register_model(model_uri, name, tags={**version_tags, _DECISION: f"@{alias}: {reason}"})
    version = int(mv.version)
    try:
        if reevaluated:
            client.set_model_version_tag(
                name, str(prev_version), _REEVALUATION, f"{key}={prev_value!r} on {eval_key} (for v{version})"
            )
        client.set_registered_model_alias(name, alias, str(version))
    except BaseException:
        _discard_version(client, name, version)
        raise
    return replace(decision, version=version)


def promote(name: str, version_or_alias: int | str, to_alias: str = CHAMPION) -> Comparison:
    """Point ``to_alias`` at a version (a number, or the version another alias points at) by hand.

    Returns the comparison of the previous holder's and the new holder's ``metric.*`` tags for printing. A
    version promoted to ``champion`` loses its ``challenger`` alias.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", str(to_alias)) or str(to_alias).isdigit():
        raise ValueError(f"to_alias must be an alias name such as 'champion'. Got {to_alias!r} instead.")
    configure()
    client = MlflowClient()
    target = _find_version(client, name, version_or_alias)
    old = _version_by_alias(client, name, to_alias)
    client.set_registered_model_alias(name, to_alias, str(target.version))
    if to_alias == CHAMPION and CHALLENGER in (target.aliases or []):
        client.delete_registered_model_alias(name, CHALLENGER)
    return Comparison(
        name=name,
        alias=to_alias,
        old_version=int(old.version) if old is not None else None,
        new_version=int(target.version),
        old_metrics=_metrics_from_tags(old.tags) if old is not None else {},
        new_metrics=_metrics_from_tags(target.tags),
        old_eval_key=old.tags.get(_EVAL_KEY) if old is not None else None,
        new_eval_key=target.tags.get(_EVAL_KEY),
    )


def resolve(model_uri: str) -> ResolvedModel:
    """Resolve ``models:/name@alias``, ``models:/name/<version>``, ``models:/name/latest``, ``runs:/id/path`` or a
    logged model ``models:/m-<id>`` (the ``model_uri`` that training prints)."""
    configure()
    client = MlflowClient()
    if model_uri.startswith("runs:/"):
        run_id, _, path = model_uri[len("runs:/") :].partition("/")
        if not run_id or not path:
            raise ValueError(
                f"A runs:/ URI looks like runs:/<run_id>/<artifact path>. Got {model_uri!r} instead."
            )
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            raise ModelNotFoundError(
                f"No run {run_id!r} in {mlflow.get_tracking_uri()} ({model_uri})."
            ) from exc
        return ResolvedModel(model_uri, None, None, run_id, model_uri, (), dict(run.data.tags))
    logged = re.fullmatch(r"models:/(m-[0-9a-f]+)", model_uri)
    if logged:  # an MLflow 3 logged model (what log_model returns), not a registered name
        try:
            lm = client.get_logged_model(logged.group(1))
        except MlflowException as exc:
            raise ModelNotFoundError(
                f"No logged model {logged.group(1)!r} in {mlflow.get_tracking_uri()} ({model_uri})."
            ) from exc
        return ResolvedModel(model_uri, None, None, lm.source_run_id, model_uri, (), dict(lm.tags))
    match = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/([^/]+))", model_uri)
    if not match:
        raise ValueError(
            f"Unsupported model URI {model_uri!r}: use models:/<name>@<alias>, models:/<name>/<version>, "
            "models:/<name>/latest or runs:/<run_id>/<path>."
        )
    name, alias, ref = match.groups()
    mv = _find_version(client, name, alias if alias is not None else ref)
    aliases = tuple(sorted(a for a, v in _aliases(client, name).items() if int(v) == int(mv.version)))
    return ResolvedModel(
        f"models:/{name}/{mv.version}", name, int(mv.version), mv.run_id, mv.source, aliases, dict(mv.tags)
    )


# ------------------------------------------------------------------------------------------ helpers
def _gate(
    key: str, value: float, baseline: Baseline | None, higher_is_better: bool, eval_key: str
) -> tuple[str | None, bool]:
    """The baseline gate's verdict sentence and whether it passed (no baseline: no verdict, passed). The sentence
    names the evaluation both were computed on (windows and data fingerprint), as the champion decision does."""
    if baseline is None:
        return None, True
    base = float(baseline.value)
    on = f"both evaluated on {eval_key}"
    if math.isnan(value) or math.isnan(base):
        return f"{key} {value:.6g} cannot be compared with {baseline.name} ({base:.6g}), {on}", False
    better = value > base if higher_is_better else value < base
    if better:
        sign = ">" if higher_is_better else "<"
        return f"{key} {value:.6g} {sign} {baseline.name}'s {base:.6g}, {on}", True
    return f"{key} {value:.6g} does not beat {baseline.name}'s {base:.6g}, {on}", False


def _discard_version(client: MlflowClient, name: str, version: int) -> None:
    """Delete a version whose registration failed half-way (best effort: the original error is what matters)."""
    with contextlib.suppress(Exception):  # the caller re-raises the original failure
        client.delete_model_version(name, str(version))


def _aliases(client: MlflowClient, name: str) -> dict[str, int]:
    try:
        return {a: int(v) for a, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"No registered model {name!r} in {mlflow.get_tracking_uri()}; train and register it first."
        ) from exc


def _version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding ``alias``, or None when the model or the alias does not exist yet."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException:
        return None
    if alias not in aliases:
        return None
    return client.get_model_version(name, str(aliases[alias]))


def _find_version(client: MlflowClient, name: str, ref: int | str) -> ModelVersion:
    aliases = _aliases(client, name)
    text = str(ref)
    if text.isdigit():
        try:
            mv = client.get_model_version(name, text)
        except MlflowException as exc:
            raise ModelNotFoundError(f"Model {name!r} has no version {text}.") from exc
    elif text == "latest":
        versions = client.search_model_versions(f"name='{name}'")
        mv = max(versions, key=lambda v: int(v.version))
        mv = client.get_model_version(name, str(mv.version))
    elif text in aliases:
        mv = client.get_model_version(name, str(aliases[text]))
    else:
        raise ModelNotFoundError(
            f"Model {name!r} has no alias {text!r}; its aliases are {sorted(aliases) or 'none'}."
        )
    return mv


def _metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    out = {}
    for key, value in tags.items():
        if key.startswith("metric."):
            number = _float_or_none(value)
            if number is not None:
                out[key] = number
    return out


def _float_or_none(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
