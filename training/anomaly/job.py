"""The exception-order jobs behind ``orderpulse train anomaly`` and ``orderpulse score``, on frames.

The CLI layer (``orderpulse.jobs.anomaly``) reads and validates the files and writes the outputs; the functions
here take validated frames and report progress through a ``training.progress.Progress``.

``train_anomaly`` takes the validated orders and labels, fits the supervised ``ExceptionClassifier``
(or, with ``unsupervised=True``, the ``UnsupervisedDetector``) on what was known before ``until``, and logs to
MLflow (experiment ``<name>-anomaly``): params, the data fingerprints, the counts of everything excluded, the
metrics (AUPRC, AUROC, Brier before and after calibration, ECE, precision/recall at the threshold, base rate,
on the validation slice and on the calibration slice), the threshold policy and what it achieved (``threshold.*``
tags, also in the pyfunc model's metadata), a calibration curve and a SHAP summary plot, and the pyfunc model
(input: order lines; snapshot: the orders and labels known at the cutoff). The model is then
registered as a new version of ``<name>-anomaly``; it becomes ``champion`` when its validation AUPRC beats the
base rate of the validation slice (the gate, supervised models only: a classifier that does not is never
champion) and the champion's on the same validation slice (``eval_key``), else ``challenger``. ``tune=N`` first runs N Optuna
trials (seeded TPE, median pruner on validation AUPRC, each a nested MLflow run).

``score_orders`` takes a loaded model and scores every order created in ``[start, end)`` as of its own
``created_at``: features come from the model's snapshot history plus the given orders (and labels), each
order seeing only orders created and labels known strictly before it. Returns ``order_id, created_at, score,
flagged, reasons`` (reasons: JSON list of ``{feature, value, contribution, text}``, for flagged orders by
default). With labels it also reports the metrics of the scored window.

Both return a summary dict (the CLI prints it as the last stdout line, as JSON).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
from sklearn.base import clone

from features.order_features import order_features
from features.order_lines import merge_by_order
from features.validation import ValidationReport
from training.anomaly.calibration import ThresholdPolicy
from training.anomaly.data import AnomalyTrainingData, parse_timestamp
from training.anomaly.models import (
    ANOMALY_SIGNATURE,
    DEFAULT_LGBM_PARAMS,
    DEFAULT_POLICY,
    DEFAULT_UNSUPERVISED_POLICY,
    AnomalyPyfunc,
    ExceptionClassifier,
    UnsupervisedDetector,
)
from training.anomaly.tuning import tune_classifier
from training.engine import check_engine, engine_context
from training.explain import import_shap
from training.metrics import evaluate_classifier
from training.profile import build_profile, profile_table
from training.progress import Progress, reporting
from training.progress import resolve as resolve_progress
from training.pyfunc import SnapshotPyfunc, load_snapshot_model, log_pyfunc
from training.registry import Baseline, NotComparableError, register, registered_name
from training.tracking import (
    data_fingerprint,
    log_figure,
    log_fingerprint,
    log_params_flat,
    start_run,
)

__all__ = [
    "train_anomaly",
    "check_train_options",
    "score_orders",
    "scoring_window",
    "scored_orders_frame",
    "metric_summary",
]

ReasonsMode = Literal["flagged", "all", "none"]


def check_train_options(unsupervised: bool, has_labels: bool, tune: int) -> None:
    """Refuse option combinations ``train_anomaly`` cannot run, before anything is read."""
    if not unsupervised and not has_labels:
        raise ValueError(
            "train anomaly needs --labels for the supervised classifier; pass a labels file "
            "(order_id, label, labeled_at) or --unsupervised."
        )
    if tune and unsupervised:
        raise ValueError(
            f"--tune {tune} applies to the supervised classifier only; drop --tune or --unsupervised."
        )


def train_anomaly(
    orders: pd.DataFrame,
    labels: pd.DataFrame | None,
    until: Any = None,
    name: str = "orderpulse",
    unsupervised: bool = False,
    tune: int = 0,
    threshold_policy: ThresholdPolicy | str | None = None,
    seed: int = 0,
    engine: str = "local",
    scheduler: str | None = None,
    reports: dict[str, ValidationReport] | None = None,
    progress: Progress | None = None,
    recipe: dict[str, Any] | None = None,
    promote_ties: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Train, log and register an exception-order model; returns run_id, model_uri, metrics, version, alias.

    ``recipe``: further constructor parameters of the model (e.g. a champion's ``get_params()``, as
    ``orderpulse retrain`` passes them); ``promote_ties`` and ``dry_run`` go to ``training.registry.register``.
    When the champion was validated on another slice, its recipe is refitted on this job's training slice and
    scored on its validation slice, so the two are compared on the same orders.

    ``orders`` and ``labels`` are validated frames (``features.io.load_table``); ``reports`` are the validation
    reports of their reading (``orders``, ``labels``), logged as ``validation.*`` metrics. ``engine="dask"``
    computes the order features on a Dask cluster (``scheduler`` or a LocalCluster); the model itself is small
    and trains in this process (``training.engine``)."""
    check_engine(engine, scheduler)
    check_train_options(unsupervised, labels is not None, tune)
    reports = reports or {}
    with reporting(progress) as progress:
        return _train_anomaly(
            orders,
            labels,
            until,
            name,
            unsupervised,
            tune,
            threshold_policy,
            seed,
            engine,
            scheduler,
            reports.get("orders"),
            reports.get("labels"),
            progress,
            {"recipe": recipe or {}, "promote_ties": promote_ties, "dry_run": dry_run},
        )


def _train_anomaly(
    orders: pd.DataFrame,
    labels: pd.DataFrame | None,
    until: Any,
    name: str,
    unsupervised: bool,
    tune: int,
    threshold_policy: ThresholdPolicy | str | None,
    seed: int,
    engine: str,
    scheduler: str | None,
    orders_report: ValidationReport | None,
    labels_report: ValidationReport | None,
    progress: Progress,
    registration: dict[str, Any],
) -> dict[str, Any]:
    model: ExceptionClassifier | UnsupervisedDetector
    given = {
        "threshold_policy": threshold_policy,
        "random_state": seed,
        "engine": engine,
        "scheduler": scheduler,
    }
    recipe = {**registration.pop("recipe"), **{k: v for k, v in given.items() if v is not None}}
    model = (UnsupervisedDetector if unsupervised else ExceptionClassifier)(**recipe)
    with engine_context(engine, scheduler):
        data = model.prepare(orders, labels, until)
    progress.info(str(data))
    kind = "unsupervised" if unsupervised else "supervised"
    experiment = registered_name(name, "anomaly")
    with start_run(
        experiment, run_name=f"{kind} until {data.cutoff.date()}", tags={"model": "anomaly", "kind": kind}
    ) as run:
        _log_inputs(model, data, orders, labels, until, orders_report, labels_report)
        if tune:
            best = tune_classifier(data, tune, seed=seed, progress=progress)
            model.params = best
            log_params_flat({"tuned": best})
        n_rows = len(data.features) if unsupervised else data.report["rows_train"]
        progress.info(f"fitting the {kind} model on {n_rows:,} orders")
        t0 = time.perf_counter()
        model.fit_prepared(data)
        fit_seconds = time.perf_counter() - t0
        metrics = {**model.metrics_, "fit_seconds": fit_seconds, **_explain_latency_ms(model, data.features)}
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_params({"threshold": f"{model.threshold_:.6g}", "threshold_chosen_on": _chosen_on(model)})
        threshold_meta = {**model.threshold_metadata(), "threshold.chosen_on": _chosen_on(model)}
        mlflow.set_tags(threshold_meta)
        if model.threshold_report_.fallback:
            mlflow.set_tag("threshold.fallback", model.threshold_report_.fallback)
            progress.warning(f"warning: {model.threshold_report_.fallback}")
        _log_plots(model, data)
        with warnings.catch_warnings():  # the signature is explicit; an input example would only slow logging
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            model_uri = log_pyfunc(
                AnomalyPyfunc(),
                model,
                {"orders": data.orders, "labels": data.labels, "profile": _profile(data, model)},
                ANOMALY_SIGNATURE,
                metadata=threshold_meta,
            )
        decision = register(
            model_uri,
            experiment,
            metric="valid_auprc",
            value=metrics.get("valid_auprc", float("nan")),
            eval_key=_eval_key(data),
            higher_is_better=True,
            metrics={k: v for k, v in metrics.items() if k.startswith("valid_") and np.isfinite(v)},
            tags={"kind": kind, "cutoff": str(data.cutoff)},
            baseline=None
            if unsupervised
            else Baseline("the base rate", metrics.get("valid_base_rate", float("nan"))),
            reevaluate=None if unsupervised else _champion_revalidation(experiment, data, progress),
            **registration,
        )
        progress.info(str(decision))
        run_id = run.info.run_id
    return {
        "run_id": run_id,
        "model_uri": model_uri,
        **decision.summary(),
        "kind": kind,
        "cutoff": str(data.cutoff),
        "threshold": model.threshold_,
        "threshold_policy": str(model.threshold_policy_),
        "threshold_fallback": model.threshold_report_.fallback,
        "metrics": {k: _round(v) for k, v in metrics.items()},
    }


def scoring_window(start: Any, end: Any, reasons: str = "flagged") -> tuple[pd.Timestamp, pd.Timestamp]:
    """Check ``score``'s arguments before anything is loaded; returns ``[start, end)`` as naive timestamps."""
    if reasons not in ("flagged", "all", "none"):
        raise ValueError(f"reasons must be 'flagged', 'all' or 'none'. Got {reasons!r} instead.")
    t_start, t_end = parse_timestamp(start, "start"), parse_timestamp(end, "end")
    if t_end <= t_start:
        raise ValueError(
            f"end must be after start: got start={t_start}, end={t_end}. Scoring covers [start, end)."
        )
    return t_start, t_end


def score_orders(
    wrapper: SnapshotPyfunc,
    orders: pd.DataFrame,
    start: Any,
    end: Any,
    labels: pd.DataFrame | None = None,
    reasons: ReasonsMode = "flagged",
    k: int = 5,
    engine: str = "local",
    scheduler: str | None = None,
    dataset: str | Path | None = None,
    progress: Progress | None = None,
    batch_size: int = 2000,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the orders created in ``[start, end)`` point-in-time; returns the scored orders and a summary.

    ``wrapper`` is a loaded anomaly model (``training.pyfunc.load_snapshot_model(uri, kind=AnomalyPyfunc)``);
    its snapshot of orders and labels is the history the given tables extend. Locally the orders are scored in
    batches of ``batch_size`` (counted by ``progress``). ``engine="dask"`` computes the features and scores per
    time range on a Dask cluster and writes the partitions to ``dataset`` itself
    (``training.anomaly.dask.score_orders_dask``); it then returns ``order_id, created_at, score, flagged``."""
    check_engine(engine, scheduler)
    t_start, t_end = scoring_window(start, end, reasons)
    progress = resolve_progress(progress)
    model = wrapper.model
    history, history_labels, n_snapshot = _merge_history(
        wrapper.tables.get("orders"), wrapper.tables.get("labels"), orders, labels
    )
    progress.info(
        f"features of {history['order_id'].nunique():,} orders ({n_snapshot:,} from the model snapshot)"
    )
    created = history["created_at"]
    if not ((created >= t_start) & (created < t_end)).any():
        raise ValueError(
            f"no order was created in [{t_start}, {t_end}); the orders run from "
            f"{orders['created_at'].min()} to {orders['created_at'].max()}. Check --from/--to."
        )
    if engine == "dask":
        from training.anomaly.dask import score_orders_dask

        if dataset is None:
            raise ValueError("engine='dask' writes the scored orders itself: pass dataset=<output path>.")
        t0 = time.perf_counter()
        out, _ = score_orders_dask(
            model,
            history,
            history_labels,
            t_start,
            t_end,
            dataset,
            scored_orders_frame,
            reasons=reasons,
            k=k,
            scheduler=scheduler,
        )
    else:
        features, _ = order_features(
            history, history_labels, prior_strength=getattr(model, "prior_strength", 10.0)
        )
        window = features.loc[(features["created_at"] >= t_start) & (features["created_at"] < t_end)]
        window = window.reset_index(drop=True)
        t0 = time.perf_counter()
        batches = range(0, len(window), batch_size)
        parts = []
        with progress.task("scoring orders", total=len(window)) as task:
            for i in batches:
                batch = window.iloc[i : i + batch_size]
                parts.append(scored_orders_frame(batch, model, reasons, k))
                task.advance(len(batch))
        out = pd.concat(parts, ignore_index=True)
    scoring_seconds = time.perf_counter() - t0
    score = out["score"].to_numpy()
    flagged = out["flagged"].to_numpy(dtype=bool)
    result: dict[str, Any] = {
        "start": str(t_start),
        "end": str(t_end),
        "orders_scored": len(out),
        "flagged": int(flagged.sum()),
        "flag_rate": _round(float(flagged.mean())),
        "threshold": _round(model.threshold_),
        "scoring_seconds": _round(scoring_seconds),
    }
    if labels is not None:
        y = out["order_id"].map(labels.set_index("order_id")["label"])
        known = y.notna().to_numpy()
        young, note = _labels_not_final(out["created_at"], labels, model)
        result["orders_labeled"] = int(known.sum())
        result["orders_unlabeled"] = int((~known).sum())
        result["orders_labeled_too_young_for_metrics"] = int((known & young).sum())
        if (known & young).any():
            progress.info(f"{int((known & young).sum())} labelled orders {note}")
        use = known & ~young
        if use.any():
            result["metrics"] = {
                k: _round(v)
                for k, v in evaluate_classifier(
                    y[use].astype(int).to_numpy(), score[use], threshold=model.threshold_
                ).items()
            }
            progress.info(
                f"metrics on {int(use.sum())} labelled orders: {metric_summary(result['metrics'], '')}"
            )
    return out, result


def _labels_not_final(created: pd.Series, labels: pd.DataFrame, model: Any) -> tuple[np.ndarray, str]:
    """Orders created within the model's label maturity before the labels' latest ``labeled_at``.

    Their known labels are the quick ones (an exception comes to light within days, a normal order is labelled
    only when its window closes), so metrics on them overstate the base rate: training leaves the same orders
    out (``training.anomaly.data``). Returns the mask and the sentence saying why they are left out."""
    days = float(getattr(model, "data_report_", {}).get("label_maturity_days", 0) or 0)
    if days <= 0 or labels.empty:
        return np.zeros(len(created), dtype=bool), ""
    as_of = pd.Timestamp(labels["labeled_at"].max())
    since = as_of - pd.Timedelta(days=days)
    young = (pd.to_datetime(created) > since).to_numpy()
    note = (
        f"created after {since} (within the model's label maturity, {days:g} days, of the labels' latest "
        f"labeled_at {as_of}) are left out of the metrics: only their early labels, mostly exceptions, are "
        "known yet. Score an older period, or label again later, to measure them"
    )
    return young, note


def scored_orders_frame(window: pd.DataFrame, model: Any, reasons: ReasonsMode, k: int) -> pd.DataFrame:
    """``order_id, created_at, score, flagged, reasons`` of the orders of a feature frame (what ``score``
    writes; reasons as JSON for the flagged orders, all or none). Applied per partition by the dask engine."""
    score = model.score(window)
    flagged = score >= model.threshold_
    out = pd.DataFrame(
        {
            "order_id": window["order_id"].astype(str),
            "created_at": window["created_at"],
            "score": score,
            "flagged": flagged,
        }
    )
    explain_rows = (
        np.flatnonzero(flagged)
        if reasons == "flagged"
        else (np.arange(len(window)) if reasons == "all" else np.array([], dtype=int))
    )
    texts = np.full(len(window), "[]", dtype=object)
    if len(explain_rows):
        explained = model.explain(window.iloc[explain_rows], k=k)
        texts[explain_rows] = [json.dumps(r, ensure_ascii=False) for r in explained["reasons"]]
    out["reasons"] = texts
    return out


def metric_summary(metrics: dict[str, Any], prefix: str = "valid_") -> str:
    """``auprc 0.412, auroc 0.801, ...`` of the ``<prefix><metric>`` entries of ``metrics`` (one stderr line)."""
    keys = ("auprc", "auroc", "brier", "ece", "precision", "recall", "base_rate")
    parts = [
        f"{k} {metrics[prefix + k]:.3f}" for k in keys if isinstance(metrics.get(prefix + k), int | float)
    ]
    return ", ".join(parts) or "no labelled validation metrics"


# ------------------------------------------------------------------------------------------ helpers
def _log_inputs(
    model: Any,
    data: AnomalyTrainingData,
    orders: pd.DataFrame,
    labels: pd.DataFrame | None,
    until: Any,
    orders_report: Any,
    labels_report: Any,
) -> None:
    params = {k: v for k, v in vars(model).items() if not k.endswith("_") and not k.startswith("_")}
    if isinstance(model, ExceptionClassifier):
        params["lgbm"] = {**DEFAULT_LGBM_PARAMS, **(model.params or {})}
    params.pop("params", None)
    default = DEFAULT_POLICY if isinstance(model, ExceptionClassifier) else DEFAULT_UNSUPERVISED_POLICY
    params["threshold_policy"] = str(ThresholdPolicy.parse(model.threshold_policy, default))
    log_params_flat(
        {
            **params,
            "until": until,
            "cutoff": data.cutoff,
            "label_maturity_days": data.report.get("label_maturity_days", 0),
        }
    )
    log_fingerprint(data_fingerprint(orders, "created_at"), "orders")
    if labels is not None:
        log_fingerprint(data_fingerprint(labels, "labeled_at"), "labels")
    counts = {f"data.{k}": float(v) for k, v in data.report.items() if isinstance(v, int | float)}
    for name, rep in (("orders", orders_report), ("labels", labels_report)):
        if rep is not None:
            counts.update({f"validation.{name}.{k}": float(v) for k, v in rep.repairs.items()})
    mlflow.log_metrics(counts)


def _log_plots(model: Any, data: AnomalyTrainingData) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.concatenate([data.rows("valid"), data.rows("calib")])
    if isinstance(model, ExceptionClassifier) and len(rows):
        fig, ax = plt.subplots(figsize=(5, 5))
        margin = model.decision_function(data.features.iloc[rows])
        for label, p in (
            ("uncalibrated", 1 / (1 + np.exp(-margin))),
            ("calibrated", model._score_from_raw(margin)),
        ):
            for part in ("valid", "calib"):
                sel = data.part[rows] == part
                x, y = _reliability(p[sel], data.y[rows][sel])
                ax.plot(x, y, marker="o", label=f"{label} ({part})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        ax.set(xlabel="predicted probability", ylabel="observed exception rate", title="Calibration")
        ax.legend(fontsize=8)
        log_figure(fig, "plots/calibration_curve.png")
    sample = rows if len(rows) else np.arange(len(data.features))
    sample = (
        sample[np.linspace(0, len(sample) - 1, min(len(sample), 1000)).astype(int)] if len(sample) else sample
    )
    if len(sample):
        shap = import_shap()
        frame = data.features.iloc[sample]
        contrib = model.contributions(frame)
        shap.summary_plot(
            contrib.values,
            model.encoder_.transform(frame),
            feature_names=list(contrib.feature_names),
            show=False,
            max_display=20,
        )
        fig = plt.gcf()
        fig.suptitle(f"SHAP ({contrib.output})", fontsize=10)
        log_figure(fig, "plots/shap_summary.png")


def _reliability(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    if len(p) == 0:
        return np.array([]), np.array([])
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    n = np.bincount(bins, minlength=n_bins)
    keep = n > 0
    return (
        np.bincount(bins, weights=p, minlength=n_bins)[keep] / n[keep],
        np.bincount(bins, weights=y, minlength=n_bins)[keep] / n[keep],
    )


def _explain_latency_ms(model: Any, features: pd.DataFrame, repeats: int = 50) -> dict[str, float]:
    """Median wall time of explaining one order: exact TreeSHAP alone, and with its reason sentences (ms)."""
    one = features.tail(1)
    model.explain_records(one)  # warm up (the detector builds its explainer here)
    out = {}
    for key, fn in (
        ("explain_one_order_ms", model.contributions),
        ("reasons_one_order_ms", model.explain_records),
    ):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(one)
            times.append(time.perf_counter() - t0)
        out[key] = float(np.median(times) * 1e3)
    return out


def _eval_key(data: AnomalyTrainingData) -> str:
    rows = data.rows("valid")
    if not len(rows):
        return f"anomaly-valid:none:cutoff={data.cutoff}"
    created = data.features["created_at"].iloc[rows]
    ids = data.features["order_id"].iloc[rows].astype(str)
    digest = pd.util.hash_pandas_object(
        pd.DataFrame({"id": ids.to_numpy(), "y": data.y[rows]}), index=False
    ).sum()
    return (
        f"anomaly-valid:{created.min()}..{created.max()}:n={len(rows)}:"
        f"pos={int(data.y[rows].sum())}:h={int(digest) & 0xFFFFFFFF:08x}"
    )


def _champion_revalidation(experiment: str, data: AnomalyTrainingData, progress: Progress) -> Any:
    """``register``'s ``reevaluate`` callback: refit the champion's recipe (``clone``) on this training slice and
    return its validation AUPRC on this validation slice; ``NotComparableError`` when it cannot be loaded or is
    not a supervised classifier."""

    def reevaluate(champion: Any) -> float:
        try:
            old = load_snapshot_model(f"models:/{experiment}/{champion.version}", kind=AnomalyPyfunc).model
        except Exception as exc:  # noqa: BLE001 - an unloadable champion cannot be compared
            raise NotComparableError(f"champion v{champion.version} could not be loaded: {exc}") from exc
        if not isinstance(old, ExceptionClassifier):
            raise NotComparableError(f"champion v{champion.version} is not a supervised classifier")
        progress.info(f"refitting champion v{champion.version}'s recipe on the same training slice")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            refitted = clone(old).fit_prepared(data)
        return float(refitted.metrics_.get("valid_auprc", float("nan")))

    return reevaluate


def _chosen_on(model: Any) -> str:
    if isinstance(model, UnsupervisedDetector):
        return "training ECDF (flag budget)"
    return "calib" if model.refit else "valid"


def _profile(data: AnomalyTrainingData, model: Any) -> pd.DataFrame:
    """The reference profile of the training features (``training.profile``), logged with the model."""
    names = [c for c in model.feature_names_ if c in data.features.columns]
    return profile_table(build_profile(data.features, names))


def _merge_history(
    snap_orders: pd.DataFrame | None,
    snap_labels: pd.DataFrame | None,
    orders: pd.DataFrame,
    labels: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    """Snapshot + given tables; the given copy of an order (or label) wins over the snapshot's."""
    history = merge_by_order(snap_orders, orders)
    return history.frame, merge_by_order(snap_labels, labels).frame, history.older_orders_kept


def _round(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else round(float(value), 6)
    return value
