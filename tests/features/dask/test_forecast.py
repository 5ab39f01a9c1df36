"""Tests of features/dask/ (partitions, forecast frames) on a 2-worker LocalCluster.

Every dask result is compared with the single-machine function on the same input: frames row for row
(values, dtypes, category lists) and reports count for count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from features.dask.forecast import build_training_frame_dask, write_training_frame_dask  # noqa: E402
from features.dask.partitions import ForecastPartitions  # noqa: E402
from features.errors import DataValidationError  # noqa: E402
from features.forecast_config import ForecastFeatureConfig  # noqa: E402
from features.forecast_frame import build_training_frame  # noqa: E402
from features.io import load_table, read_frame  # noqa: E402
from features.validation import validate  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
SMALL = ForecastFeatureConfig(freq="D", lags=(1, 7), rolling_windows=(7,), seasonal_windows=((7, 2),))


@pytest.fixture(scope="module")
def rossmann():
    return {
        k: load_table(SAMPLE / "rossmann" / f"{k}.csv", k)[0]
        for k in ("series", "covariates", "weather", "static")
    }


def _tiny_series() -> pd.DataFrame:
    """Three daily series: A (20 days), B (starts later), C (no covariates)."""
    rows = []
    for sid, start, n, level in (
        ("A", "2024-01-01", 20, 10.0),
        ("B", "2024-01-08", 13, 50.0),
        ("C", "2024-01-03", 18, 5.0),
    ):
        ds = pd.date_range(start, periods=n, freq="D")
        rows.append(pd.DataFrame({"series_id": sid, "ds": ds, "y": level + np.arange(n) % 7}))
    return validate(pd.concat(rows, ignore_index=True), "series")[0]


def _tiny_covariates() -> pd.DataFrame:
    a = pd.DataFrame({"series_id": "A", "ds": pd.date_range("2024-01-01", periods=25, freq="D")})
    a["promo"] = (np.arange(25) % 6 < 2).astype(int)
    b = pd.DataFrame({"series_id": "B", "ds": pd.date_range("2024-01-10", periods=8, freq="D")})
    b["promo"] = [0, 1, 1, 0, 0, 0, 1, 0]
    unknown = pd.DataFrame({"series_id": ["Z"], "ds": [pd.Timestamp("2024-01-05")], "promo": [1]})
    cov = pd.concat([a, b, unknown], ignore_index=True)
    cov["state_holiday"] = np.where(cov["ds"].dt.day == 6, "a", "0")
    return validate(cov, "covariates")[0]


def _tiny_static() -> pd.DataFrame:
    st = pd.DataFrame(
        {
            "series_id": ["A", "B", "C", "Z"],
            "region": ["north", "south", "north", "east"],
            "kind": list("xyxz"),
        }
    )
    return validate(st, "static")[0]


def _tiny_weather() -> pd.DataFrame:
    ds = pd.date_range("2023-12-25", periods=40, freq="D")
    w = pd.concat(
        [
            pd.DataFrame({"region": r, "ds": ds, "temp_mean": t + np.sin(np.arange(40))})
            for r, t in (("north", 2.0), ("south", 9.0))
        ],
        ignore_index=True,
    )
    return validate(w, "weather")[0]


# ------------------------------------------------------------------------------------------ forecast frames


def test_dask_training_frame_equals_local_frame_row_for_row(client, rossmann):
    tables = {k: rossmann[k] for k in ("covariates", "weather", "static")}
    config = ForecastFeatureConfig(freq="D").for_horizon(7)
    local, local_report = build_training_frame(rossmann["series"], config=config, **tables)

    parts = ForecastPartitions.from_pandas(rossmann["series"], **tables, npartitions=3, client=client)
    frame, report = build_training_frame_dask(parts, config, client=client)

    assert frame.npartitions == 3
    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), local)
    assert report.counts == local_report.counts
    assert report.categories == local_report.categories
    assert report.feature_names == local_report.feature_names


def test_each_series_lives_in_one_partition_in_sorted_order(client):
    series = _tiny_series()
    parts = ForecastPartitions.from_pandas(series, npartitions=2, client=client)
    # 20, 13 and 18 rows: a series goes where its middle row falls (B's middle, row 26.5 of 51, is past half)
    assert parts.assignment.to_dict() == {"A": 0, "B": 1, "C": 1}
    pieces = client.gather(parts.series)
    assert [sorted(p["series_id"].unique()) for p in pieces] == [["A"], ["B", "C"]]


def test_per_series_covariates_unknown_series_and_missing_covariates_match_local(client):
    series, cov, static, weather = _tiny_series(), _tiny_covariates(), _tiny_static(), _tiny_weather()
    local, local_report = build_training_frame(series, cov, weather, static, SMALL)

    # one series per partition: C's partition has no covariate row of its own, Z (unknown) goes to partition 0
    parts = ForecastPartitions.from_pandas(series, cov, weather, static, npartitions=3, client=client)
    assert parts.assignment.to_dict() == {"A": 0, "B": 1, "C": 2}
    frame, report = build_training_frame_dask(parts, SMALL, client=client)

    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), local)
    assert report.counts == local_report.counts
    assert report.counts["covariate_rows_for_unknown_series_ignored"] == 1
    assert report.counts["static_rows_for_unknown_series_ignored"] == 1


def test_dask_lag_features_never_use_values_after_cutoff(client):
    series = _tiny_series()
    cutoff = pd.Timestamp("2024-01-12")
    changed = series.copy()
    after = changed["ds"] > cutoff
    changed.loc[after, "y"] = changed.loc[after, "y"] * 100 + 7

    def build(s: pd.DataFrame) -> pd.DataFrame:
        parts = ForecastPartitions.from_pandas(s, _tiny_covariates(), npartitions=2, client=client)
        return build_training_frame_dask(parts, SMALL, client=client)[0].compute().reset_index(drop=True)

    before, after_change = build(series), build(changed)
    keep = before["ds"] <= cutoff
    features = [c for c in before.columns if c != "y"]
    pd.testing.assert_frame_equal(
        before.loc[keep, features].reset_index(drop=True),
        after_change.loc[keep, features].reset_index(drop=True),
    )
    assert not before.loc[~keep, "y"].equals(after_change.loc[~keep, "y"])


def test_frame_from_a_parquet_directory_written_per_partition_reads_back_as_local(client, rossmann, tmp_path):
    raw = tmp_path / "series"
    raw.mkdir()
    s = rossmann["series"]
    for i, chunk in enumerate(
        np.array_split(np.arange(len(s)), 4)
    ):  # files cut across series, as data arrives
        s.iloc[chunk].to_parquet(raw / f"day-{i}.parquet", index=False)
    rossmann["covariates"].to_parquet(tmp_path / "covariates.parquet", index=False)
    tables = {k: rossmann[k] for k in ("covariates", "weather", "static")}
    local, local_report = build_training_frame(s, config=SMALL, **tables)

    parts = ForecastPartitions.from_paths(
        raw,
        tmp_path / "covariates.parquet",
        rossmann["weather"],
        rossmann["static"],
        npartitions=3,
        client=client,
    )
    report = write_training_frame_dask(parts, tmp_path / "frame", SMALL, client=client)

    assert sorted(p.name for p in (tmp_path / "frame").iterdir()) == [
        f"part-0000{i}.parquet" for i in range(3)
    ]
    pd.testing.assert_frame_equal(read_frame(tmp_path / "frame"), local)
    assert report.counts == local_report.counts
    assert parts.validation["series"].rows_in == len(s)


def test_bad_rows_of_every_partition_are_refused_together(client, tmp_path):
    raw = _tiny_series().assign(ds=lambda d: d["ds"].dt.strftime("%Y-%m-%d"))
    raw.loc[[2, 30], "y"] = -1.0  # one bad row in series A, one in series C (two partitions)
    raw.to_csv(tmp_path / "series.csv", index=False)
    parts = ForecastPartitions.from_paths(tmp_path / "series.csv", npartitions=2, client=client)
    with pytest.raises(
        DataValidationError, match=r"series\.y: value fails check greater_than_or_equal_to\(0\) \(2 rows"
    ) as exc:
        build_training_frame_dask(parts, SMALL, client=client)
    assert [p.n_rows for p in exc.value.problems] == [2]


def test_drop_mode_counts_bad_rows_dropped_in_every_partition(client, tmp_path):
    raw = _tiny_series()
    raw.loc[[2, 30], "y"] = -1.0
    raw.to_parquet(tmp_path / "series.parquet", index=False)
    parts = ForecastPartitions.from_paths(
        tmp_path / "series.parquet", on_bad_rows="drop", npartitions=2, client=client
    )
    frame, report = build_training_frame_dask(parts, SMALL, client=client)
    assert parts.validation["series"].repairs == {"bad_rows_dropped": 2}
    assert report.counts["gap_rows_inserted"] == 2  # the dropped days are gaps now, counted as such
