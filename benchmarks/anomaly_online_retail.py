"""Benchmark: exception-order models on Online Retail (UCI 352 + 502), on rolling time splits.

    python benchmarks/anomaly_online_retail.py [--source ../shared/data/online_retail]
        [--split 2010-08-31:2010-09-01:2010-12-01 ...] [--policies f1,f1:0.1,...] [--extras]

Reads ../shared/data through ``features.adapters.online_retail`` (orders = purchase invoices, label = the
customer cancels one of the order's StockCodes within 30 days). Each split trains on what was known at the end
of ``until`` and scores the labelled orders created in ``[start, end)`` whose 30-day label window closed
before the data ends (later ones are labelled 0 only because the data stops: they are excluded and counted).
Default splits (the data runs 2009-12-01 .. 2011-08-31):

    autumn 2010: train through 2010-08-31, score 2010-09-01 .. 2010-11-30 (the season change the issue asks
                 about: train through August, score the September-November pre-Christmas ramp)
    winter 2010: train through 2010-11-30, score 2010-12-01 .. 2011-02-28
    spring 2011: train through 2011-02-28, score 2011-03-01 .. 2011-05-31
    summer 2011: train through 2011-05-31, score 2011-06-01 .. 2011-07-31 (+ what is mature in August)

First a diagnosis of the data: the label rule and how fast labels arrive (the label delay decides the label
maturity the training cut uses), and the base rate per month. Per split: label maturity and the immature
orders it kept out of training, base rate of the train / valid / calib slices and of the test window (does
the class balance shift across the season change?), then the models, trained in the same run on the same
rows:

* ``old``: the issue-4 feature set and the target-precision policy 0.6 (what OrderPulse shipped before
  issue 17);
* ``new``: every feature of ``features.order_features`` and the default policy (``f1:0.15``: best F1 among
  thresholds that flag at most 15% of the orders);
* ``new+<policy>``: the new model with the threshold the other policies (``--policies``) choose on its
  validation slice, to show what they would flag (``f1`` is the former default, best F1 uncapped).

Columns: AUPRC / base rate (``lift``), AUROC, ECE, precision / recall / flag rate at the model's flag, the
flags per day; then the features that carry the signal (share of the booster's gain, and of the mean |SHAP|
on the test orders). Every feature of a test order uses only orders created and labels known before it; the
labels of the test orders are used for evaluation only. ``--extras`` adds the unsupervised detector and
timings (scoring, features from lines, TreeSHAP of one order) on the first split. Issue-17 targets: AUPRC >=
2.8x the base rate, ECE <= 0.05, recall at the default flag >= 20%.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.adapters import online_retail  # noqa: E402
from features.order_features import OrderHistory, order_features  # noqa: E402
from training.anomaly.calibration import ThresholdPolicy, choose_threshold, days_covered  # noqa: E402
from training.anomaly.models import ExceptionClassifier, UnsupervisedDetector  # noqa: E402
from training.metrics import evaluate_classifier  # noqa: E402

SPLITS = (
    "2010-08-31:2010-09-01:2010-12-01",
    "2010-11-30:2010-12-01:2011-03-01",
    "2011-02-28:2011-03-01:2011-06-01",
    "2011-05-31:2011-06-01:2011-09-01",
)
WINDOW_DAYS = 30
"""The adapter's label window: an order's label is final ``WINDOW_DAYS`` after it was created."""
ISSUE_17_MARKS = ("halflife", "_last_30d", "_last_exception", "customer_sku_", "_vs_usual", "value_weighted")
"""Name parts of the features issue 17 added (and ``order_<column>_exception_rate``): ``old`` leaves them out."""


def is_issue_17_feature(name: str) -> bool:
    return any(m in name for m in ISSUE_17_MARKS) or (
        name.startswith("order_") and name.endswith("_exception_rate")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(online_retail.DEFAULT_SOURCE))
    parser.add_argument("--split", action="append", help="until:start:end (repeatable)")
    parser.add_argument("--policies", default="f1,f1:0.1,f1:0.2,reviews:5,cost:4,precision:0.6")
    parser.add_argument("--extras", action="store_true", help="unsupervised detector and timings")
    args = parser.parse_args()
    if not Path(args.source).is_dir():
        sys.exit(
            f"{args.source} is absent: this benchmark needs the full Online Retail data (../shared/data)."
        )
    warnings.simplefilter("ignore", UserWarning)  # threshold fallbacks are printed in the table instead
    t0 = time.perf_counter()
    tables, _ = online_retail.load(args.source)
    orders, labels = tables["orders"], tables["labels"]
    print(f"loaded {len(orders):,} order lines, {len(labels):,} labels in {time.perf_counter() - t0:.1f}s")
    data_end = _diagnose(orders, labels)
    t0 = time.perf_counter()
    features, _ = order_features(orders, labels)  # point-in-time features of every order, one pass
    print(f"features of {len(features):,} orders in {time.perf_counter() - t0:.1f}s")
    y_all = features["order_id"].map(labels.set_index("order_id")["label"])
    policies = [p for p in args.policies.split(",") if p]
    summary = []
    for i, split in enumerate(args.split or SPLITS):
        until, start, end = split.split(":")
        rows = _run_split(
            orders, labels, features, y_all, until, pd.Timestamp(start), pd.Timestamp(end), policies, data_end
        )
        summary += [{"split": f"{until} -> [{start}, {end})", **r} for r in rows]
        if args.extras and i == 0:
            _extras(orders, labels, features, y_all, until, pd.Timestamp(start), pd.Timestamp(end))
    table = pd.DataFrame(summary).set_index(["split", "model"])
    print("\nsummary")
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3f}".format
    ):
        print(table[["lift", "auprc", "auroc", "ece", "precision", "recall", "flag_rate"]].to_string())
    new = table.xs("new", level="model")
    print("\nnew defaults per split (lift, ECE, recall and flag rate at the default flag):")
    for split, r in new.iterrows():
        print(
            f"  {split}: lift {r['lift']:.2f}x, ECE {r['ece']:.3f}, recall {r['recall']:.3f}, "
            f"flag rate {r['flag_rate']:.3f}, precision {r['precision']:.3f}"
        )
    print(
        f"\nnew defaults, worst split: lift {new['lift'].min():.2f}x (target >= 2.8), ECE {new['ece'].max():.3f} "
        f"(target <= 0.05), recall {new['recall'].min():.3f} (target >= 0.20)"
    )


def _diagnose(orders: pd.DataFrame, labels: pd.DataFrame) -> pd.Timestamp:
    """Print the label rule, the label delay and the base rate per month; return the data's end."""
    created = orders.groupby("order_id", sort=False)["created_at"].first()
    lab = labels.set_index("order_id")
    delay = (lab["labeled_at"] - lab.index.map(created)) / pd.Timedelta(days=1)
    pos = lab["label"] == 1
    data_end = orders["created_at"].max()
    q = delay[pos].quantile([0.1, 0.5, 0.9, 0.99])
    print(
        f"\ndiagnosis: label = the customer cancels one of the order's StockCodes within {WINDOW_DAYS} days "
        f"(labeled_at = the first such cancellation; otherwise 0 when the window closes). {int(pos.sum()):,} of "
        f"{len(lab):,} labels positive ({pos.mean():.3f}); delay of positives in days: p10 {q[0.1]:.1f}, "
        f"p50 {q[0.5]:.1f}, p90 {q[0.9]:.1f}, p99 {q[0.99]:.1f} (so the training cut needs a label maturity of "
        f"about {WINDOW_DAYS} days: a known label of a younger order is mostly a positive); data ends {data_end}"
    )
    month = lab.index.map(created).to_period("M")
    rate = lab.groupby(month)["label"].agg(["size", "mean"])
    print(
        "base rate by month of creation (n):",
        ", ".join(f"{m} {r['mean']:.3f} ({int(r['size']):,})" for m, r in rate.iterrows()),
    )
    print(
        f"(orders of the last {WINDOW_DAYS} days have an open window at the data's end: their 0 labels are not "
        f"final, so test windows stop at {(data_end - pd.Timedelta(days=WINDOW_DAYS)).date()})"
    )
    return data_end


def _run_split(orders, labels, features, y_all, until, start, end, policies, data_end) -> list[dict]:
    mature = features["created_at"] <= data_end - pd.Timedelta(days=WINDOW_DAYS)
    in_period = (features["created_at"] >= start) & (features["created_at"] < end) & y_all.notna()
    in_window = in_period & mature
    open_window = in_period & ~mature
    test = features.loc[in_window].reset_index(drop=True)
    y = y_all[in_window].astype(int).to_numpy()
    days = days_covered(test["created_at"].to_numpy())
    base = ExceptionClassifier(n_jobs=1)
    t0 = time.perf_counter()
    data = base.prepare(orders, labels, until)
    prep_s = time.perf_counter() - t0
    rep = data.report
    rates = {p: rep[f"positives_{p}"] / max(rep[f"rows_{p}"], 1) for p in ("train", "valid", "calib")}
    known = data.labels
    late = (known["labeled_at"] >= data.cutoff).sum() if known is not None else 0
    print(
        f"\n=== train through {until}, score [{start.date()}, {end.date()}): {len(test):,} labelled test orders "
        f"over {days:.0f} days ({int(open_window.sum()):,} more with a window still open at the data's end "
        f"left out), base rate {y.mean():.4f}; prepare {prep_s:.1f}s\n"
        f"    label maturity {rep['label_maturity_days']} days: {rep['orders_immature_excluded']:,} orders with a "
        f"label already known but created within it excluded ({rep['orders_immature_excluded_positive']:,} of "
        f"them positive); {rep['orders_label_unknown_at_cutoff']:,} orders whose label was not known at the "
        f"cutoff; labels known after the cutoff used: {int(late)}\n"
        f"    base rate train {rates['train']:.4f} / valid {rates['valid']:.4f} / calib {rates['calib']:.4f} / "
        f"test {y.mean():.4f} (test / train {y.mean() / max(rates['train'], 1e-9):.2f})"
    )
    out = []
    fitted: dict[str, ExceptionClassifier] = {}
    for name, policy in (("old", "precision:0.6"), ("new", None)):
        names = [f for f in data.feature_names if name == "new" or not is_issue_17_feature(f)]
        model = ExceptionClassifier(threshold_policy=policy, n_jobs=1)
        t0 = time.perf_counter()
        model.fit_prepared(replace(data, feature_names=names))
        fit_s = time.perf_counter() - t0
        fitted[name] = model
        score = model.score(test)
        out.append(_row(name, y, score, model.threshold_report_, days, fit_s))
    va = data.rows("valid")  # the other policies on the new model: the threshold its fit would have chosen
    valid_score, score = fitted["new"].score(data.features.iloc[va]), fitted["new"].score(test)
    valid_days = days_covered(data.features["created_at"].to_numpy()[va])
    for policy in policies:
        choice = choose_threshold(valid_score, data.y[va], ThresholdPolicy.parse(policy), days=valid_days)
        out.append(_row(f"new+{policy}", y, score, choice, days, 0.0))
    cols = ["lift", "auprc", "auroc", "ece", "threshold", "precision", "recall", "flag_rate", "flags_per_day"]
    frame = pd.DataFrame(out).set_index("model")
    with pd.option_context(
        "display.width", 220, "display.max_columns", 30, "display.float_format", "{:.3f}".format
    ):
        print(frame[cols + ["policy", "valid", "fallback", "fit_s"]].to_string())
    new = fitted["new"]
    gain = pd.Series(new.booster_.feature_importance("gain"), new.feature_names_)
    shap = pd.Series(np.abs(new.contributions(test).values).mean(0), new.feature_names_)
    for what, imp in (("gain", gain), ("mean |SHAP| on test", shap)):
        top = (imp / imp.sum()).sort_values(ascending=False).head(8)
        print(f"top features by {what} (new):", ", ".join(f"{k} {v:.0%}" for k, v in top.items()))
    return out


def _row(name, y, score, choice, days, fit_s) -> dict:
    m = evaluate_classifier(y, score, threshold=choice.threshold)
    flags = int((score >= choice.threshold).sum())
    return {
        "model": name,
        "lift": m["auprc"] / m["base_rate"],
        **m,
        "flag_rate": flags / len(y),
        "flags_per_day": flags / days,
        "fit_s": fit_s,
        "policy": choice.policy,
        "valid": f"P {choice.precision:.3f} R {choice.recall:.3f}",
        "fallback": "yes" if choice.fallback else "",
    }


def _extras(orders, labels, features, y_all, until, start, end) -> None:
    in_window = (features["created_at"] >= start) & (features["created_at"] < end)
    test = features.loc[in_window & y_all.notna()].reset_index(drop=True)
    y = y_all[in_window & y_all.notna()].astype(int).to_numpy()
    clf = ExceptionClassifier(n_jobs=1).fit(orders, labels, until=until)
    det = UnsupervisedDetector(n_jobs=1).fit(orders, labels, until=until)
    m = evaluate_classifier(y, det.score(test), threshold=det.threshold_)
    print(f"unsupervised (budget 5%): lift {m['auprc'] / m['base_rate']:.2f}x, recall {m['recall']:.3f}")
    window_lines = orders.loc[(orders["created_at"] >= start) & (orders["created_at"] < end)]
    history = OrderHistory(orders.loc[orders["created_at"] < start], labels.loc[labels["labeled_at"] < start])
    window = features.loc[in_window].reset_index(drop=True)
    n, one = len(window), window.tail(1)
    one_lines = window_lines.loc[window_lines["order_id"] == window_lines["order_id"].iloc[-1]]
    timings = {
        "score_per_1000_s": _best(lambda: clf.score(window)) / n * 1000,
        "score_with_reasons_per_1000_s": _best(lambda: clf.explain(window)) / n * 1000,
        "features_plus_score_per_1000_s": _best(lambda: clf.score(history.features(window_lines)[0]))
        / n
        * 1000,
        "features_one_order_ms": _median_ms(lambda: history.feature_columns(one_lines)),
        "explain_one_order_treeshap_ms": _median_ms(lambda: clf.contributions(one)),
        "explain_one_order_with_reasons_ms": _median_ms(lambda: clf.explain_records(one)),
    }
    for key, value in timings.items():
        print(f"{key:45s} {value:10.4f}")


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _median_ms(fn, repeats: int = 200) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


if __name__ == "__main__":
    main()
