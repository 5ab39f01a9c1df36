"""Hierarchy levels from static columns and the aggregate series (features/hierarchy.py), on hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.hierarchy import (
    NO_GROUP,
    Hierarchy,
    aggregate_tables,
    combine_member_sums,
    member_sums,
    parse_levels,
)

STATIC = pd.DataFrame(
    {
        "series_id": ["a", "b", "c"],
        "region": ["North", "North", "South"],
        "store_type": ["x", "y", "x"],
    }
)


def _series() -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=3, freq="D")
    rows = []
    for sid, base in (("a", 10.0), ("b", 20.0), ("c", 40.0), ("d", 5.0)):
        for i, d in enumerate(ds):
            rows.append({"series_id": sid, "ds": d, "y": base + i, "open": 1})
    return pd.DataFrame(rows)


def test_parse_levels_keeps_order_and_refuses_the_series_level():
    assert parse_levels("region, total,region") == ("region", "total")
    assert parse_levels(["total"]) == ("total",)
    with pytest.raises(ValueError, match="'series' is the series themselves"):
        parse_levels("series,total")


def test_summing_matrix_sums_series_to_their_region_and_to_the_total():
    h = Hierarchy.from_static(STATIC, ["a", "b", "c"], "region,total")
    S_df, tags = h.summing_matrix()
    S = S_df.set_index("unique_id")
    assert list(S.index) == ["region=North", "region=South", "total", "a", "b", "c"]
    assert S.loc["region=North"].tolist() == [1.0, 1.0, 0.0]
    assert S.loc["region=South"].tolist() == [0.0, 0.0, 1.0]
    assert S.loc["total"].tolist() == [1.0, 1.0, 1.0]
    assert np.array_equal(S.loc[["a", "b", "c"]].to_numpy(), np.eye(3))
    assert list(tags["region"]) == ["region=North", "region=South"]
    assert list(tags["series"]) == ["a", "b", "c"]


def test_grouped_levels_each_sum_to_the_total():
    h = Hierarchy.from_static(STATIC, ["a", "b", "c"], ["region", "store_type", "total"])
    S = h.summing_matrix()[0].set_index("unique_id")
    assert S.loc[["region=North", "region=South"]].sum().tolist() == S.loc["total"].tolist()
    assert S.loc[["store_type=x", "store_type=y"]].sum().tolist() == S.loc["total"].tolist()


def test_missing_level_column_is_a_clear_error():
    with pytest.raises(ValueError, match=r"level 'country' is not a column of the static table.*region"):
        Hierarchy.from_static(STATIC, ["a", "b"], "country,total")


def test_static_level_without_static_table_is_a_clear_error():
    with pytest.raises(ValueError, match="need a static table"):
        Hierarchy.from_static(None, ["a"], "region")


def test_empty_level_values_are_refused_with_the_series_named():
    static = STATIC.assign(region=["North", "  ", None])
    with pytest.raises(ValueError, match=r"'region' .* empty for 2 series, e.g. \['b', 'c'\]"):
        Hierarchy.from_static(static, ["a", "b", "c"], "region,total")


def test_series_without_static_row_go_to_the_none_group_and_are_counted():
    h = Hierarchy.from_static(STATIC, ["a", "b", "c", "d"], "region,total")
    assert h.groups.loc["d", "region"] == NO_GROUP
    assert h.report == {"series_without_region": 1}
    assert f"region={NO_GROUP}" in set(h.keys()["key"])
    S = h.summing_matrix()[0].set_index("unique_id")
    assert S.loc[f"region={NO_GROUP}"].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_total_only_needs_no_static_table():
    h = Hierarchy.from_static(None, ["a", "b"], "total")
    assert h.keys()["key"].tolist() == ["total"]


def test_aggregate_series_sum_y_and_share_open():
    series = _series()
    series.loc[(series["series_id"] == "b") & (series["ds"] == "2024-01-02"), "open"] = 0
    series.loc[(series["series_id"] == "b") & (series["ds"] == "2024-01-02"), "y"] = 0.0
    h = Hierarchy.from_static(STATIC, ["a", "b", "c", "d"], "region,total")
    agg, cov, static, counts = aggregate_tables(h, series)
    north = agg.loc[agg["series_id"] == "region=North"].set_index("ds")
    assert north["y"].tolist() == [30.0, 11.0, 34.0]
    assert north["open"].tolist() == [1, 1, 1]
    total = agg.loc[agg["series_id"] == "total"].set_index("ds")
    assert total["y"].tolist() == [75.0, 58.0, 83.0]
    share = cov.loc[cov["series_id"] == "region=North"].set_index("ds")["open_share"]
    assert share.tolist() == [1.0, 0.5, 1.0]
    assert counts["aggregate_rows_with_missing_members"] == 0
    assert static.set_index("series_id").loc["region=South", "region"] == "South"
    assert pd.isna(static.set_index("series_id").loc["total", "region"])


def test_aggregate_y_stays_missing_for_future_rows_and_partial_rows_are_counted():
    series = _series()
    future = pd.DataFrame(
        {"series_id": ["a", "b"], "ds": pd.Timestamp("2024-01-04"), "y": np.nan, "open": [1, 0]}
    )
    series = series.loc[~((series["series_id"] == "a") & (series["ds"] == "2024-01-03"))]
    h = Hierarchy.from_static(STATIC, ["a", "b", "c"], "region")
    agg, cov, _, counts = aggregate_tables(h, pd.concat([series, future]))
    north = agg.loc[agg["series_id"] == "region=North"].set_index("ds")
    assert np.isnan(north.loc["2024-01-04", "y"])
    assert north.loc["2024-01-03", "y"] == 22.0  # only b reported
    assert counts["aggregate_rows_with_missing_members"] == 1
    assert cov.set_index(["series_id", "ds"]).loc[("region=North", "2024-01-04"), "open_share"] == 0.5


def test_aggregate_covariates_are_member_means_and_holiday_codes_become_shares():
    series = _series()
    cov = pd.DataFrame(
        {
            "series_id": ["a", "b", "c"],
            "ds": pd.Timestamp("2024-01-01"),
            "promo": [1, 0, 1],
            "state_holiday": ["a", "0", "0"],
        }
    )
    h = Hierarchy.from_static(STATIC, ["a", "b", "c"], "region,total")
    _, agg_cov, _, _ = aggregate_tables(h, series, cov)
    row = agg_cov.set_index(["series_id", "ds"]).loc[("region=North", pd.Timestamp("2024-01-01"))]
    assert row["promo"] == 0.5
    assert row["state_holiday"] == 0.5
    total = agg_cov.set_index(["series_id", "ds"]).loc[("total", pd.Timestamp("2024-01-01"))]
    assert total["promo"] == pytest.approx(2 / 3)


def test_member_sums_of_disjoint_partitions_add_up_to_the_whole():
    series = _series()
    series.loc[(series["series_id"] == "b") & (series["ds"] == "2024-01-02"), ["y", "open"]] = [0.0, 0]
    series.loc[(series["series_id"] == "c") & (series["ds"] == "2024-01-03"), "y"] = np.nan
    h = Hierarchy.from_static(STATIC, ["a", "b", "c", "d"], "region,total")
    whole = member_sums(h, series)
    parts = [member_sums(h, series.loc[series["series_id"].isin(ids)]) for ids in (["a", "c"], ["b"], ["d"])]
    combined = combine_member_sums(parts)
    pd.testing.assert_frame_equal(combined, whole, check_dtype=False)
    north = whole.loc[whole["key"] == "region=North"].set_index("ds")
    assert north["n_open"].tolist() == [2, 1, 2]
    agg_from_sums, cov_from_sums, _, _ = aggregate_tables(h, None, sums=combined)
    agg, cov, _, _ = aggregate_tables(h, series)
    pd.testing.assert_frame_equal(agg_from_sums, agg)
    pd.testing.assert_frame_equal(cov_from_sums, cov)


def test_aggregate_series_count_open_members():
    series = _series()
    series.loc[(series["series_id"] == "b") & (series["ds"] == "2024-01-02"), ["y", "open"]] = [0.0, 0]
    h = Hierarchy.from_static(STATIC, ["a", "b", "c", "d"], "region,total")
    agg, _, _, _ = aggregate_tables(h, series)
    assert agg.loc[agg["series_id"] == "total", "n_open"].tolist() == [4, 3, 4]


def test_aggregate_tables_needs_series_or_sums():
    h = Hierarchy.from_static(STATIC, ["a", "b"], "total")
    with pytest.raises(ValueError, match="needs the series or their member_sums"):
        aggregate_tables(h, None)
