"""AutoGluon-TimeSeries as a peer, run in its own virtual environment (it needs torch; never in ``make test``).

    .venv-autogluon/bin/python benchmarks/peers/autogluon_ts.py DIR

Called by ``benchmarks/autogluon_peer.py`` (``--autogluon`` of the forecast benchmarks), which writes into DIR:

* ``history.parquet``: ``series_id, ds, y`` and the known covariate columns, up to the cut;
* ``future.parquet``: ``series_id, ds`` and the same covariates for the ``horizon`` steps after the cut;
* ``static.parquet`` (optional): ``series_id`` and categorical static columns;
* ``config.json``: ``freq``, ``horizon``, ``covariates``, ``time_limit``, ``models``, ``seed``.

The setting is the issue's: DirectTabular + RecursiveTabular + ETS + Theta with AutoGluon's weighted ensemble,
``eval_metric="WAPE"``, quantiles 0.1 / 0.9 (the 80% interval), a 20-minute limit, no downloaded weights
(no Chronos or other pretrained models). Gaps in a series are filled with NaN targets (AutoGluon's own
handling); missing covariates with 0. Writes ``pred.parquet``: ``series_id, ds, yhat, yhat_lo_80, yhat_hi_80``
(the mean forecast, clipped at 0) and ``info.json`` (the leaderboard and the ensemble's weights).
Only pandas and autogluon are imported: this file runs outside OrderPulse's environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from autogluon.timeseries import TimeSeriesDataFrame, TimeSeriesPredictor


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"series_id": "item_id", "ds": "timestamp"}).assign(
        item_id=lambda d: d["item_id"].astype(str)
    )


def main(folder: str) -> None:
    work = Path(folder)
    cfg = json.loads((work / "config.json").read_text())
    covariates = list(cfg["covariates"])
    history = _frame(pd.read_parquet(work / "history.parquet"))
    future = _frame(pd.read_parquet(work / "future.parquet"))
    history[covariates] = history[covariates].fillna(0).astype("float64")
    future[covariates] = future[covariates].fillna(0).astype("float64")

    data = TimeSeriesDataFrame.from_data_frame(history, id_column="item_id", timestamp_column="timestamp")
    # a regular grid: missing days become NaN targets, their covariates 0
    data = data.convert_frequency(cfg["freq"])
    data[covariates] = data[covariates].fillna(0.0)
    static_path = work / "static.parquet"
    if static_path.exists():
        static = _frame(pd.read_parquet(static_path)).set_index("item_id")
        data.static_features = static.astype("category")

    predictor = TimeSeriesPredictor(
        prediction_length=int(cfg["horizon"]),
        freq=cfg["freq"],
        target="y",
        known_covariates_names=covariates or None,
        eval_metric="WAPE",
        quantile_levels=[0.1, 0.5, 0.9],
        path=str(work / "model"),
        verbosity=1,
    )
    predictor.fit(
        data,
        hyperparameters={name: {} for name in cfg["models"]},
        time_limit=int(cfg["time_limit"]),
        random_seed=int(cfg.get("seed", 0)),
    )
    # every series needs covariates for each of the horizon steps after its own last timestamp
    known = None
    if covariates:
        wanted = predictor.make_future_data_frame(data)
        known = wanted.merge(future, on=["item_id", "timestamp"], how="left")
        known[covariates] = known[covariates].fillna(0.0)
        known = TimeSeriesDataFrame.from_data_frame(known, id_column="item_id", timestamp_column="timestamp")
    pred = predictor.predict(data, known_covariates=known).reset_index()
    out = pd.DataFrame(
        {
            "series_id": pred["item_id"].astype(str),
            "ds": pred["timestamp"],
            "yhat": pred["mean"].clip(lower=0),
            "yhat_lo_80": pred["0.1"].clip(lower=0),
            "yhat_hi_80": pred["0.9"].clip(lower=0),
        }
    )
    out.to_parquet(work / "pred.parquet", index=False)
    board = predictor.leaderboard(silent=True)
    info = {
        "models": board["model"].tolist(),
        "score_val": board["score_val"].tolist(),
        "best": predictor.model_best,
    }
    try:
        best = predictor._trainer.load_model(predictor.model_best)  # noqa: SLF001 - no public accessor
        info["weights"] = {k: float(v) for k, v in getattr(best, "model_to_weight", {}).items()}
    except Exception:  # noqa: BLE001 - the weights are informative only
        info["weights"] = None
    (work / "info.json").write_text(json.dumps(info, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
