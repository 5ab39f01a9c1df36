"""Exception-order models: P(order becomes an exception), with reasons.

``ExceptionClassifier`` (supervised LightGBM) and ``UnsupervisedDetector`` (IsolationForest) share one
interface: ``fit(orders, labels, until=None)`` on validated order lines and labels, then ``score(features)``
(a number in [0, 1] per order), ``predict(features)`` (flag 0/1 at ``threshold_``) and ``explain(features)``
(score, flag and reasons per order) on the point-in-time feature frame of ``features.order_features`` /
``OrderHistory.features``, so training and serving compute features with the same code.

ExceptionClassifier, step by step (``training.anomaly.data`` documents which orders are training rows):

1. Training rows are split by time, never at random: ``train`` (earliest ~70%), ``valid`` (~15%), ``calib``
   (latest ~15%).
2. A LightGBM binary booster is fitted on ``train`` with early stopping on ``valid`` AUPRC. The defaults are
   deliberately small and slow (7 leaves, at least 100 orders per leaf, learning rate 0.02, early-stopped):
   exception labels are noisy, and on Online Retail larger trees at 0.05 early-stopped after ~30 rounds with
   AUPRC varying +-0.06x the base rate between seeds; these settings gave a higher AUPRC on all four rolling
   splits and a seed spread of about 0.01 (``benchmarks/anomaly_online_retail.py``), and exact TreeSHAP of
   one order stays well under a millisecond. Class imbalance: ``scale_pos_weight=None`` by default (the base
   rate of real exception labels, ~10-20%, does not need it; ``"balanced"`` did not raise AUPRC there); it or a
   number re-weights positives, which distorts the raw probability; calibration undoes that (the fit reports
   Brier before and after).
3. A calibrator maps the raw margin to a probability, fitted on ``calib`` (the most recent slice, so "0.8"
   means 80% *now*): centered isotonic when the slice is large enough, Platt otherwise
   (``training.anomaly.calibration``).
4. The threshold is chosen on ``valid`` (calibrated scores) by the ``ThresholdPolicy``
   (``training.anomaly.calibration``): by default the best F1 among thresholds flagging at most 15% of the
   orders (``f1:0.15``), or plain best F1, a target precision, a flag budget, a review
   budget per day or a cost ratio; an unreachable target falls back to best F1 and says so in
   ``threshold_report_.fallback`` and a warning. ``threshold_metadata()`` states policy and numbers.
5. No refit by default: the served booster is exactly the one whose calibration and threshold were measured;
   the price is that the latest 30% of labelled history only steers early stopping, calibration and the
   threshold. ``refit=True`` refits the booster on ``train + valid`` with the early-stopped number of rounds
   scaled by the data size, then refits the calibrator on ``calib`` and re-chooses the threshold on ``calib``
   (the only slice left out of sample for the new booster; the valid metrics then describe the first booster).

Explanations are exact TreeSHAP in **log-odds** (``training.explain``): ``base + sum(contributions) ==
raw margin``; the calibrated score is reported next to them, never as their sum.

UnsupervisedDetector: scikit-learn IsolationForest on the same features (categoricals as their frequency
among the training orders, missing numbers as the training median). Score = the ECDF of the training
orders' anomaly (interpolated over 1,001 quantiles): 0.97 means "more anomalous than 97% of the training
orders", so a flag budget of 5% is the threshold 0.95. Labels are optional and only used for metrics. Its
explanations are exact TreeSHAP of the (negated) isolation path length.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, Schema
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest

from features.columns import FeatureTable, column_values, has_column, n_rows
from features.errors import NotFittedError
from features.order_features import OrderHistory, order_feature_family
from training.anomaly.calibration import ThresholdPolicy, choose_threshold, days_covered, fit_calibrator
from training.anomaly.data import AnomalyTrainingData, FeatureEncoder, prepare_training_data
from training.anomaly.reasons import build_reasons
from training.explain import (
    Contributions,
    isolation_forest_contributions,
    isolation_forest_explainer,
    lgbm_contributions,
)
from training.forecast.forecaster import default_n_jobs
from training.metrics import brier, ece, evaluate_classifier
from training.pyfunc import SnapshotPyfunc

__all__ = [
    "ExceptionClassifier",
    "UnsupervisedDetector",
    "AnomalyPyfunc",
    "ANOMALY_SIGNATURE",
    "DEFAULT_LGBM_PARAMS",
    "DEFAULT_POLICY",
    "DEFAULT_UNSUPERVISED_POLICY",
]

DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "average_precision",
    "learning_rate": 0.02,
    "num_leaves": 7,
    "max_depth": 6,
    "min_child_samples": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "min_data_per_group": 50,
    "max_cat_to_onehot": 8,
    "verbose": -1,
}
DEFAULT_POLICY = ThresholdPolicy.parse("f1:0.15")
DEFAULT_UNSUPERVISED_POLICY = ThresholdPolicy(target_precision=None, flag_budget=0.05)

ANOMALY_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(AnyType(), "order_id"),
            ColSpec("datetime", "created_at"),
            ColSpec(AnyType(), "customer_id", required=False),
            ColSpec(AnyType(), "sku"),
            ColSpec(AnyType(), "quantity"),
            ColSpec(AnyType(), "unit_price"),
            ColSpec(AnyType(), "country", required=False),
            ColSpec(AnyType(), "channel", required=False),
            ColSpec(AnyType(), "region", required=False),
        ]
    ),
    outputs=Schema(
        [ColSpec("string", "order_id"), ColSpec("double", "score"), ColSpec("boolean", "flagged")]
    ),
)
"""Input: order lines in the ``orders`` input shape (ids and numbers in any dtype: int quantities or ids are
converted the way a validated ``orders`` table is, not refused by MLflow's schema enforcement); output: one row
per order."""

_log = logging.getLogger(__name__)
_ECDF_POINTS = 1001
_MULTITHREAD_ROWS = 50_000


class _OrderModel(BaseEstimator):
    """What both models share: scoring, flags and explanations on a feature frame (scikit-learn estimator:
    ``get_params`` / ``set_params`` / ``clone`` work; learned state ends in ``_``)."""

    threshold_: float
    feature_names_: list[str]

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(orders, labels, until) "
                f"before scoring or explaining orders."
            )

    def score(self, features: FeatureTable) -> np.ndarray:
        """The exception score in [0, 1] of every row of ``features`` (see the class docstring).

        Unlike scikit-learn's ``score(X, y)`` (a metric), this scores orders: OrderPulse's vocabulary.
        """
        self._check_fitted()
        return self._score_from_raw(self.decision_function(features))

    def predict(self, features: FeatureTable) -> np.ndarray:
        """1 where the order is flagged (``score >= threshold_``), else 0."""
        return (self.score(features) >= self.threshold_).astype("int8")

    def threshold_metadata(self) -> dict[str, str]:
        """The threshold policy and what it achieved where it was chosen, as flat strings (MLflow tags)."""
        self._check_fitted()
        return self.threshold_report_.metadata()

    def predict_proba(self, features: FeatureTable) -> np.ndarray:
        """scikit-learn shape: column 0 = 1 - score, column 1 = score."""
        s = self.score(features)
        return np.column_stack([1.0 - s, s])

    def explain(self, features: FeatureTable, k: int = 5, positive_only: bool = True) -> pd.DataFrame:
        """Per order: ``order_id, score, flagged, raw, base_value, reasons`` (list of reason dicts).

        ``raw`` is the model output the contributions add up to (``base_value + sum``); ``score`` is the
        calibrated / normalised score, which is not additive in the contributions.
        """
        return pd.DataFrame(
            self.explain_records(features, k=k, positive_only=positive_only),
            columns=["order_id", "score", "flagged", "raw", "base_value", "reasons"],
        )

    def explain_records(
        self, features: FeatureTable, k: int = 5, positive_only: bool = True
    ) -> list[dict[str, Any]]:
        """``explain`` as a list of dicts (no DataFrame: the cheapest form for a request of one order)."""
        contrib = self.contributions(features)
        raw = contrib.raw
        score = self._score_from_raw(raw)
        reasons = build_reasons(features, contrib, k=k, positive_only=positive_only)
        ids = _order_ids(features)
        return [
            {
                "order_id": ids[i],
                "score": float(score[i]),
                "flagged": bool(score[i] >= self.threshold_),
                "raw": float(raw[i]),
                "base_value": float(contrib.base[i]),
                "reasons": reasons[i],
            }
            for i in range(len(ids))
        ]

    def family_contributions(self, features: FeatureTable) -> pd.DataFrame:
        """Contributions summed by feature family (order / customer / sku / time / categorical)."""
        return self.contributions(features).by_family(order_feature_family)

    def contributions(self, features: FeatureTable) -> Contributions:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_function(self, features: FeatureTable) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_from_raw(self, raw: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ExceptionClassifier(_OrderModel):
    """Supervised, calibrated LightGBM classifier of exception orders (see module docstring).

    Learned state: ``booster_`` (lgb.Booster), ``calibrator_``, ``threshold_`` (calibrated score),
    ``threshold_report_`` (ThresholdChoice), ``feature_names_``, ``encoder_``, ``best_iteration_``,
    ``metrics_`` (validation and calibration-slice metrics), ``data_report_`` (counts), ``cutoff_``.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        n_estimators: int = 1000,
        early_stopping_rounds: int = 100,
        threshold_policy: ThresholdPolicy | str | None = None,
        calibration: str = "auto",
        valid_fraction: float = 0.15,
        calib_fraction: float = 0.15,
        label_maturity: str | pd.Timedelta | None = "auto",
        scale_pos_weight: str | float | None = None,
        refit: bool = False,
        prior_strength: float = 10.0,
        random_state: int = 0,
        n_jobs: int | None = None,
        engine: str = "local",
        scheduler: str | None = None,
    ):
        self.params = params
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.threshold_policy = threshold_policy
        self.calibration = calibration
        self.valid_fraction = valid_fraction
        self.calib_fraction = calib_fraction
        self.label_maturity = label_maturity
        self.scale_pos_weight = scale_pos_weight
        self.refit = refit
        self.prior_strength = prior_strength
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.engine = engine
        self.scheduler = scheduler

    # ------------------------------------------------------------------------------------------------ fit
    def prepare(self, orders: pd.DataFrame, labels: pd.DataFrame, until: Any = None) -> AnomalyTrainingData:
        """Features, labels and time slices as of ``until`` (``training.anomaly.data``)."""
        if labels is None:
            raise ValueError(
                "ExceptionClassifier needs labels (order_id, label, labeled_at). Got None; use "
                "UnsupervisedDetector to score orders without labels."
            )
        return prepare_training_data(
            orders,
            labels,
            until,
            maturity=self.label_maturity,
            valid_fraction=self.valid_fraction,
            calib_fraction=self.calib_fraction,
            prior_strength=self.prior_strength,
            features_fn=_features_fn(self),
        )

    def fit(self, orders: pd.DataFrame, labels: pd.DataFrame, until: Any = None) -> ExceptionClassifier:
        """Fit on validated order lines and labels known before ``until`` (see module docstring)."""
        return self.fit_prepared(self.prepare(orders, labels, until))

    def fit_prepared(
        self, data: AnomalyTrainingData, callbacks: list[Any] | None = None
    ) -> ExceptionClassifier:
        """Fit on prepared training data (``prepare``); ``callbacks`` go to ``lgb.train`` (e.g. pruning)."""
        policy = ThresholdPolicy.parse(self.threshold_policy, DEFAULT_POLICY)
        names = data.feature_names
        self.encoder_ = FeatureEncoder(names, categorical="codes").fit(data.features.iloc[data.rows("train")])
        X = self.encoder_.transform(data.features)
        tr, va, ca = data.rows("train"), data.rows("valid"), data.rows("calib")
        params = self._lgbm_params(data.y[tr])
        booster = self._train(params, X, data.y, tr, va, callbacks)
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=self.best_iteration_))
        self.feature_names_ = list(names)
        if self.refit:
            rounds = max(1, round(self.best_iteration_ * (len(tr) + len(va)) / len(tr)))
            train_valid = np.concatenate([tr, va])
            ds = self._dataset(X[train_valid], data.y[train_valid])
            self.booster_ = lgb.train(params, ds, num_boost_round=rounds)
        margin = self._margin(X)
        self.calibrator_ = fit_calibrator(margin[ca], data.y[ca], self.calibration)
        choose_on = ca if self.refit else va
        self.threshold_report_ = choose_threshold(
            self.calibrator_.predict(margin[choose_on]),
            data.y[choose_on],
            policy,
            days=days_covered(data.features["created_at"].to_numpy()[choose_on]),
        )
        self.threshold_ = float(self.threshold_report_.threshold)
        self.threshold_policy_ = policy
        if self.threshold_report_.fallback:
            warnings.warn(self.threshold_report_.fallback, UserWarning, stacklevel=2)
            _log.warning("%s", self.threshold_report_.fallback)
        self.metrics_ = self._metrics(margin, data, tr, va, ca)
        self.data_report_ = dict(data.report)
        self.cutoff_ = data.cutoff
        return self

    def _lgbm_params(self, y_train: np.ndarray) -> dict[str, Any]:
        params = {**DEFAULT_LGBM_PARAMS, **(self.params or {})}
        # small data trains faster on one thread (OpenMP start-up and spinning cost more than they save)
        threads = 1 if len(y_train) < _MULTITHREAD_ROWS else _threads(self.n_jobs)
        params.update(seed=self.random_state, num_threads=threads, deterministic=True, force_row_wise=True)
        params.pop("n_estimators", None)
        spw = self.scale_pos_weight
        if isinstance(spw, str):
            if spw != "balanced":
                raise ValueError(
                    f"scale_pos_weight must be None, 'balanced' or a positive number. Got {spw!r}."
                )
            n_pos = max(int(y_train.sum()), 1)
            params["scale_pos_weight"] = (len(y_train) - n_pos) / n_pos
        elif spw is not None:
            params["scale_pos_weight"] = float(spw)
        return params

    def _dataset(self, X: np.ndarray, y: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            X,
            y,
            feature_name=self.encoder_.feature_names,
            categorical_feature=self.encoder_.categorical_indices,
            reference=reference,
            free_raw_data=False,
        )

    def _train(
        self,
        params: dict[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        callbacks: list[Any] | None,
    ) -> lgb.Booster:
        train = self._dataset(X[tr], y[tr])
        valid = self._dataset(X[va], y[va], reference=train)
        cbs = [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        return lgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=cbs + list(callbacks or []),
        )

    def _metrics(
        self, margin: np.ndarray, data: AnomalyTrainingData, tr: np.ndarray, va: np.ndarray, ca: np.ndarray
    ) -> dict[str, float]:
        out: dict[str, float] = {
            "best_iteration": float(self.best_iteration_),
            "base_rate_train": float(data.y[tr].mean()),
            "n_train": float(len(tr)),
        }
        for prefix, rows in (("valid", va), ("calib", ca)):
            y, m = data.y[rows], margin[rows]
            p = self.calibrator_.predict(m)
            raw_p = _sigmoid(m)
            for key, value in evaluate_classifier(y, p, threshold=self.threshold_).items():
                out[f"{prefix}_{key}"] = float(value)
            out[f"{prefix}_brier_uncalibrated"] = brier(y, raw_p)
            out[f"{prefix}_ece_uncalibrated"] = ece(y, raw_p)
        return out

    # ----------------------------------------------------------------------------------------- predict
    def decision_function(self, features: FeatureTable) -> np.ndarray:
        """The booster's raw margin (log-odds) per row: what the contributions add up to."""
        self._check_fitted()
        return self._margin(self.encoder_.transform(features))

    def contributions(self, features: FeatureTable) -> Contributions:
        """Exact TreeSHAP in log-odds: ``base + values.sum(1) == decision_function(features)``."""
        self._check_fitted()
        return lgbm_contributions(self.booster_, self.encoder_.transform(features), self.feature_names_)

    def _margin(self, X: np.ndarray) -> np.ndarray:
        threads = 1 if len(X) < _MULTITHREAD_ROWS else _threads(self.n_jobs)
        return np.asarray(self.booster_.predict(X, raw_score=True, num_threads=threads), dtype="float64")

    def _score_from_raw(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator_.predict(raw), 0.0, 1.0)


class UnsupervisedDetector(_OrderModel):
    """IsolationForest over the order features; score = training ECDF (see module docstring).

    Learned state: ``forest_``, ``encoder_``, ``quantiles_`` (of the training raw anomaly), ``threshold_``,
    ``threshold_report_``, ``feature_names_``, ``metrics_`` (when labels were given), ``data_report_``.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int | float | str = 256,
        threshold_policy: ThresholdPolicy | str | None = None,
        valid_fraction: float = 0.15,
        calib_fraction: float = 0.15,
        label_maturity: str | pd.Timedelta | None = "auto",
        prior_strength: float = 10.0,
        random_state: int = 0,
        n_jobs: int | None = None,
        engine: str = "local",
        scheduler: str | None = None,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.threshold_policy = threshold_policy
        self.valid_fraction = valid_fraction
        self.calib_fraction = calib_fraction
        self.label_maturity = label_maturity
        self.prior_strength = prior_strength
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.engine = engine
        self.scheduler = scheduler

    def prepare(
        self, orders: pd.DataFrame, labels: pd.DataFrame | None = None, until: Any = None
    ) -> AnomalyTrainingData:
        return prepare_training_data(
            orders,
            labels,
            until,
            maturity=self.label_maturity,
            valid_fraction=self.valid_fraction,
            calib_fraction=self.calib_fraction,
            prior_strength=self.prior_strength,
            require_labels=False,
            features_fn=_features_fn(self),
        )

    def fit(
        self, orders: pd.DataFrame, labels: pd.DataFrame | None = None, until: Any = None
    ) -> UnsupervisedDetector:
        """Fit on every order created before ``until``; labels (optional) only feed the features and metrics."""
        return self.fit_prepared(self.prepare(orders, labels, until))

    def fit_prepared(self, data: AnomalyTrainingData) -> UnsupervisedDetector:
        policy = ThresholdPolicy.parse(self.threshold_policy, DEFAULT_UNSUPERVISED_POLICY)
        if policy.kind != "budget":
            raise ValueError(
                f"UnsupervisedDetector flags a share of orders and needs a flag budget; got the "
                f"policy {policy}. Pass e.g. threshold_policy='budget:0.05'."
            )
        self.feature_names_ = list(data.feature_names)
        self.encoder_ = FeatureEncoder(self.feature_names_, categorical="frequency", impute=True).fit(
            data.features
        )
        X = self.encoder_.transform(data.features)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            random_state=self.random_state,
            n_jobs=_threads(self.n_jobs),
        ).fit(X)
        raw = self._raw(X)
        self.quantiles_ = np.quantile(raw, np.linspace(0.0, 1.0, _ECDF_POINTS))
        scores = self._score_from_raw(raw)
        self.threshold_report_ = choose_threshold(scores, None, policy)
        self.threshold_ = float(self.threshold_report_.threshold)
        self.threshold_policy_ = policy
        self.data_report_ = {
            **data.report,
            "missing_values_imputed_at_fit": sum(self.encoder_.n_missing_.values()),
        }
        self.cutoff_ = data.cutoff
        self.metrics_ = {}
        va = data.rows("valid")
        if len(va) and 0 < data.y[va].sum() < len(va):
            for key, value in evaluate_classifier(data.y[va], scores[va], threshold=self.threshold_).items():
                self.metrics_[f"valid_{key}"] = float(value)
        return self

    def decision_function(self, features: FeatureTable) -> np.ndarray:
        """Raw anomaly = minus the mean isolation path length (higher = more anomalous)."""
        self._check_fitted()
        return self._raw(self.encoder_.transform(features))

    def contributions(self, features: FeatureTable) -> Contributions:
        """Exact TreeSHAP of the negated path length: ``base + values.sum(1) == decision_function``."""
        self._check_fitted()
        if getattr(self, "_explainer", None) is None:
            self._explainer = isolation_forest_explainer(self.forest_)
        return isolation_forest_contributions(
            self._explainer, self.encoder_.transform(features), self.feature_names_
        )

    def _raw(self, X: np.ndarray) -> np.ndarray:
        # score_samples = -2 ** (-mean_path / c(max_samples)); invert to the mean path length
        c = _average_path_length(self.forest_.max_samples_)
        s = -self.forest_.score_samples(X)
        return np.log2(s) * c

    def _score_from_raw(self, raw: np.ndarray) -> np.ndarray:
        q = self.quantiles_
        return np.interp(raw, q, np.linspace(0.0, 1.0, len(q)))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_explainer", None)  # rebuilt on first explain (shap objects do not pickle reliably)
        return state


class AnomalyPyfunc(SnapshotPyfunc):
    """MLflow pyfunc: order lines in, ``order_id, score, flagged`` out.

    The snapshot tables ``orders`` and ``labels`` are the history known at the training cutoff; each incoming
    order is scored as of its ``created_at`` against that history (``features.order_features.OrderHistory``,
    built once per process) and the other incoming orders.
    """

    _history: OrderHistory | None = None

    def history(self) -> OrderHistory:
        if self._history is None:
            labels = self.table("labels")  # none known at the cutoff is valid (outcomes arrive weeks later)
            self._history = OrderHistory(
                self.tables["orders"],
                labels if labels is not None and len(labels) else None,
                prior_strength=getattr(self.model, "prior_strength", 10.0),
            )
        return self._history

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        features, _ = self.history().features(model_input)
        score = self.model.score(features)
        return pd.DataFrame(
            {"order_id": _order_ids(features), "score": score, "flagged": score >= self.model.threshold_}
        )


def _features_fn(model: Any) -> Any:
    """``None`` (``order_features``) for the local engine; the dask engine's equivalent otherwise: order
    features are computed on the cluster, the model itself is small and trains here (``training.engine``)."""
    engine = getattr(model, "engine", "local")
    if engine == "local" and getattr(model, "scheduler", None) is None:
        return None
    from training.anomaly.dask import order_features_engine

    return order_features_engine(engine, model.scheduler)


def _order_ids(features: FeatureTable) -> list[str]:
    if has_column(features, "order_id"):
        return [str(v) for v in column_values(features, "order_id")]
    if isinstance(features, pd.DataFrame):
        return [str(v) for v in features.index]
    return [str(i) for i in range(n_rows(features))]


def _threads(n_jobs: int | None) -> int:
    """``n_jobs``, or ``ORDERPULSE_N_JOBS`` / the CPU count when None (``training.forecast.forecaster.default_n_jobs``)."""
    return default_n_jobs() if n_jobs is None else int(n_jobs)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype="float64")))


def _average_path_length(n: int) -> float:
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n
