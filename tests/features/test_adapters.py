"""features/adapters: the Online Retail label rule, the Rossmann Promo2 rule and state mapping, the shipped
sample, and (slow) the full datasets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.adapters import ADAPTERS, online_retail, prepare, rossmann
from features.io import load_table
from features.validation import validate

T = pd.Timestamp

# ------------------------------------------------------------------------------------------ Online Retail

# (invoice, sku, quantity, time, customer): every case of the label rule once; prices are all 1.0
_NEW_LINES = [
    ("500001", "A", 1, "2011-01-01 10:00:00", 100.0),  # exception: its B and A are cancelled later
    ("500001", "B", 2, "2011-01-01 10:00:00", 100.0),
    ("C500020", "B", -2, "2011-01-20 09:00:00", 100.0),
    ("C500021", "A", -1, "2011-01-15 08:00:00", 100.0),  # the first matching cancellation
    ("500002", "C", 1, "2011-01-01 10:00:00", 200.0),  # cancellation of a different SKU
    ("C500022", "D", -1, "2011-01-05 10:00:00", 200.0),
    ("500003", "E", 1, "2011-01-01 10:00:00", 300.0),  # cancelled 30 days + 1 minute later
    ("C500023", "E", -1, "2011-01-31 10:01:00", 300.0),
    ("500004", "F", 1, "2011-01-01 10:00:00", 400.0),  # another customer cancels F
    ("C500024", "F", -1, "2011-01-02 10:00:00", 500.0),
    ("500005", "G", 3, "2011-01-01 11:00:00", np.nan),  # guest order
    ("500006", "H", 1, "2011-01-01 10:00:00", 600.0),  # cancelled exactly 30 days later: counts
    ("C500025", "H", -1, "2011-01-31 10:00:00", 600.0),
    ("500007", "J", 1, "2011-01-10 10:00:00", 700.0),  # the cancellation came BEFORE the order
    ("C500026", "J", -1, "2011-01-05 10:00:00", 700.0),
    ("500008", "K", 0, "2011-01-02 10:00:00", np.nan),  # quantity 0: dropped and counted
    ("500008", "L", 1, "2011-01-02 10:00:00", np.nan),
    ("A500009", "B", 1, "2011-01-03 10:00:00", np.nan),  # bad-debt adjustment: not an order
]
# the older file, Online Retail II column names; 500001 is in both files (the overlap)
_OLD_LINES = [
    ("499999", "A", 4, "2010-12-30 09:00:00", 100.0),
    ("500001", "A", 1, "2011-01-01 10:00:00", 100.0),
    ("500001", "B", 2, "2011-01-01 10:00:00", 100.0),
]


def _raw(lines, old: bool) -> pd.DataFrame:
    inv, sku, qty, time, cust = zip(*lines, strict=True)
    names = ("Invoice", "Price", "Customer ID") if old else ("InvoiceNo", "UnitPrice", "CustomerID")
    return pd.DataFrame(
        {
            names[0]: inv,
            "StockCode": sku,
            "Description": "x",
            "Quantity": qty,
            "InvoiceDate": time,
            names[1]: 1.0,
            names[2]: cust,
            "Country": "United Kingdom",
        }
    )


@pytest.fixture
def retail():
    tables, report = online_retail.adapt([_raw(_OLD_LINES, old=True), _raw(_NEW_LINES, old=False)])
    labels = tables["labels"].set_index("order_id")
    return tables, labels, report


def test_order_is_exception_when_customer_cancels_one_of_its_skus_within_30_days(retail):
    _, labels, _ = retail
    assert labels.loc["500001", "label"] == 1


def test_exception_labeled_at_is_the_first_matching_cancellation(retail):
    _, labels, _ = retail
    assert labels.loc["500001", "labeled_at"] == T("2011-01-15 08:00:00")


def test_cancellation_exactly_30_days_later_counts(retail):
    _, labels, _ = retail
    assert labels.loc["500006", "label"] == 1
    assert labels.loc["500006", "labeled_at"] == T("2011-01-31 10:00:00")


def test_cancellation_of_a_different_sku_does_not_count(retail):
    _, labels, _ = retail
    assert labels.loc["500002", "label"] == 0


def test_cancellation_after_30_days_does_not_count(retail):
    _, labels, _ = retail
    assert labels.loc["500003", "label"] == 0


def test_another_customers_cancellation_does_not_count(retail):
    _, labels, _ = retail
    assert labels.loc["500004", "label"] == 0


def test_cancellation_before_the_order_does_not_count(retail):
    _, labels, _ = retail
    assert labels.loc["500007", "label"] == 0


def test_negative_labeled_at_is_created_at_plus_30_days(retail):
    _, labels, _ = retail
    assert labels.loc["500003", "labeled_at"] == T("2011-01-31 10:00:00")
    assert labels.loc["500007", "labeled_at"] == T("2011-02-09 10:00:00")


def test_guest_orders_are_kept_but_get_no_label(retail):
    tables, labels, report = retail
    assert "500005" in set(tables["orders"]["order_id"])
    assert "500005" not in labels.index
    assert sorted(labels.index) == ["499999", "500001", "500002", "500003", "500004", "500006", "500007"]
    assert report.counts["guest_orders_unlabeled"] == 2  # 500005 and 500008


def test_overlap_between_files_is_kept_once_and_counted(retail):
    tables, _, report = retail
    orders = tables["orders"]
    assert orders.loc[orders["order_id"] == "500001", "sku"].tolist() == ["A", "B"]
    assert report.counts["overlap_lines_dropped_from_earlier_file"] == 2
    assert report.counts["overlap_invoices_kept_once"] == 1
    assert "499999" in set(orders["order_id"])  # only in the older file: kept


def test_cancellations_adjustments_and_non_positive_quantities_are_not_order_lines(retail):
    tables, _, report = retail
    orders = tables["orders"]
    assert not orders["order_id"].str.startswith(("C", "A")).any()
    assert orders.loc[orders["order_id"] == "500008", "sku"].tolist() == ["L"]
    assert report.counts["purchase_lines_quantity_le_0_dropped"] == 1
    assert report.counts["adjustment_lines_dropped"] == 1


def test_customer_ids_are_strings_without_float_suffix(retail):
    tables, _, _ = retail
    assert tables["orders"].loc[tables["orders"]["order_id"] == "500001", "customer_id"].iloc[0] == "100"


def test_invoice_with_several_timestamps_gets_its_first_and_is_counted():
    lines = [("600001", "A", 1, "2011-03-01 10:00:00", 1.0), ("600001", "B", 1, "2011-03-01 10:01:00", 1.0)]
    tables, report = online_retail.adapt([_raw(lines, old=False)])
    assert tables["orders"]["created_at"].tolist() == [T("2011-03-01 10:00:00")] * 2
    assert report.counts["invoices_with_several_timestamps_set_to_first"] == 1
    assert report.counts["lines_moved_to_invoice_first_timestamp"] == 1


def test_online_retail_tables_pass_validation_untouched(retail):
    tables, _, _ = retail
    for name, df in tables.items():
        _, report = validate(df, name)
        assert report.repairs == {} and report.rows_out == len(df), name


def test_labels_known_at_a_cutoff_do_not_depend_on_cancellations_after_it():
    lines = _raw(_NEW_LINES, old=False)
    full, _ = online_retail.adapt([lines])
    for cutoff in (T("2011-01-12"), T("2011-01-31 10:00:00"), T("2011-02-05")):
        later_cancel = lines["InvoiceNo"].str.startswith("C") & (
            pd.to_datetime(lines["InvoiceDate"]) > cutoff
        )
        cut, _ = online_retail.adapt([lines.loc[~later_cancel]])
        known = full["labels"].loc[full["labels"]["labeled_at"] <= cutoff].reset_index(drop=True)
        known_cut = cut["labels"].loc[cut["labels"]["labeled_at"] <= cutoff].reset_index(drop=True)
        pd.testing.assert_frame_equal(known, known_cut)


def test_missing_online_retail_column_is_named():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['StockCode'\]"):
        online_retail.adapt([_raw(_NEW_LINES, old=False).drop(columns="StockCode")])


# ------------------------------------------------------------------------------------------------ Rossmann


def test_promo2_start_is_the_monday_of_the_iso_week():
    start = rossmann.promo2_start(pd.Series([2015.0, 2013.0, np.nan]), pd.Series([1.0, 10.0, np.nan]))
    assert start.iloc[0] == T("2014-12-29")  # ISO week 1 of 2015 starts in 2014
    assert start.iloc[1] == T("2013-03-04")
    assert pd.isna(start.iloc[2])


def test_promo2_active_needs_participation_start_and_interval_month():
    ds = pd.Series(pd.to_datetime(["2013-03-03", "2013-03-04", "2013-04-15", "2013-09-10", "2013-09-10"]))
    since = pd.Series(pd.to_datetime(["2013-03-04"] * 5))
    promo2 = pd.Series([1, 1, 1, 1, 0])
    interval = pd.Series(["Mar,Jun,Sept,Dec"] * 5)
    # before the start, in, month not in the interval, "Sept", store not in Promo2
    assert rossmann.promo2_active(ds, promo2, since, interval).tolist() == [0, 1, 0, 1, 0]


def test_promo2_active_is_zero_without_interval_or_start():
    ds = pd.Series(pd.to_datetime(["2014-01-10", "2014-01-10"]))
    active = rossmann.promo2_active(
        ds,
        pd.Series([1, 1]),
        pd.Series([pd.NaT, T("2013-01-07")]),
        pd.Series(["Jan,Apr,Jul,Oct", pd.NA], dtype="string"),
    )
    assert active.tolist() == [0, 0]


def test_unknown_promo_interval_month_is_refused():
    ds = pd.Series(pd.to_datetime(["2014-01-10"]))
    with pytest.raises(ValueError, match=r"unknown month 'Janvier'"):
        rossmann.promo2_active(ds, pd.Series([1]), pd.Series([T("2013-01-07")]), pd.Series(["Janvier"]))


def test_state_codes_map_to_weather_file_names_and_hb_ni_to_niedersachsen():
    names = rossmann.map_states(pd.Series(["BY", "HB,NI", "SH", "NW"]))
    assert names.tolist() == ["Bayern", "Niedersachsen", "SchleswigHolstein", "NordrheinWestfalen"]


def test_unknown_state_code_is_refused_with_the_code():
    with pytest.raises(ValueError, match=r"Unknown German state code\(s\) \['XX'\]"):
        rossmann.map_states(pd.Series(["BY", "XX"]))


def _weather(temps: list[int], events: list) -> pd.DataFrame:
    n = len(temps)
    return pd.DataFrame(
        {
            "Date": pd.date_range("2015-01-01", periods=n).strftime("%Y-%m-%d"),
            "Max_TemperatureC": [t + 5 for t in temps],
            "Mean_TemperatureC": temps,
            "Min_TemperatureC": [t - 5 for t in temps],
            "Precipitationmm": [0.0] * n,
            "Mean_Humidity": [80] * n,
            "Mean_Sea_Level_PressurehPa": [1015] * n,
            "Mean_Wind_SpeedKm_h": [10] * n,
            "CloudCover": [np.nan] + [4.0] * (n - 1),
            "Events": events,
            "WindDirDegrees": [200] * n,
        }
    )


@pytest.fixture
def ross():
    train = pd.DataFrame(
        {
            "Store": [1, 1, 2, 2],
            "DayOfWeek": [4, 5, 4, 5],
            "Date": ["2015-01-01", "2015-01-02"] * 2,
            "Sales": [0, 5000, 0, 0],
            "Customers": [0, 500, 0, 0],
            "Open": [0, 1, 0, 1],
            "Promo": [0, 1, 0, 1],
            "StateHoliday": pd.array(["a", "0", "a", "0"], dtype="string"),
            "SchoolHoliday": pd.array(["1", "0", "1", "0"], dtype="string"),
        }
    )
    store = pd.DataFrame(
        {
            "Store": [1, 2],
            "StoreType": ["a", "c"],
            "Assortment": ["a", "c"],
            "CompetitionDistance": [1270.0, np.nan],
            "CompetitionOpenSinceMonth": [9.0, np.nan],
            "CompetitionOpenSinceYear": [2008.0, np.nan],
            "Promo2": [1, 0],
            "Promo2SinceWeek": [1.0, np.nan],
            "Promo2SinceYear": [2015.0, np.nan],
            "PromoInterval": pd.array(["Jan,Apr,Jul,Oct", pd.NA], dtype="string"),
        }
    )
    states = pd.DataFrame({"Store": [1, 2], "State": ["HB,NI", "SH"]})
    copy = _weather([1, 2], ["Fog-Rain", np.nan])
    weather = {
        "Niedersachsen": _weather([3, 4], ["Rain-Thunderstorm", "Snow"]),
        "SchleswigHolstein": copy,
        "MecklenburgVorpommern": copy.copy(),
    }
    return rossmann.adapt(train, store, states, weather)


def test_rossmann_series_keep_closed_days_with_open_flag(ross):
    tables, _ = ross
    s = tables["series"]
    assert s[["series_id", "y", "open"]].values.tolist() == [
        ["1", 0.0, 0],
        ["1", 5000.0, 1],
        ["2", 0.0, 0],
        ["2", 0.0, 1],
    ]


def test_rossmann_covariates_carry_promo_holidays_and_promo2(ross):
    tables, _ = ross
    c = tables["covariates"]
    assert c["state_holiday"].tolist() == ["a", "0", "a", "0"]
    assert c["school_holiday"].tolist() == [1, 0, 1, 0]
    assert c["promo2_active"].tolist() == [1, 1, 0, 0]  # store 1: in Promo2 since 2014-12-29, January


def test_rossmann_weather_is_renamed_with_event_flags_for_used_states_only(ross):
    tables, _ = ross
    w = tables["weather"].set_index(["region", "ds"])
    assert sorted(w.index.get_level_values("region").unique()) == ["Niedersachsen", "SchleswigHolstein"]
    day1 = w.loc[("Niedersachsen", T("2015-01-01"))]
    assert (day1["temp_mean"], day1["temp_max"], day1["temp_min"]) == (3.0, 8.0, -2.0)
    assert (day1["event_rain"], day1["event_thunderstorm"], day1["event_snow"], day1["event_fog"]) == (
        1,
        1,
        0,
        0,
    )
    blank = w.loc[("SchleswigHolstein", T("2015-01-02"))]
    assert blank[["event_rain", "event_snow", "event_fog", "event_thunderstorm"]].tolist() == [0, 0, 0, 0]
    assert "WindDirDegrees" not in tables["weather"].columns


def test_rossmann_static_joins_weather_regions(ross):
    tables, report = ross
    st = tables["static"].set_index("series_id")
    assert st.loc["1", "region"] == "Niedersachsen" and st.loc["1", "state_code"] == "HB,NI"
    assert st.loc["2", "region"] == "SchleswigHolstein"
    assert pd.isna(st.loc["2", "competition_distance"])
    assert report.counts["stores_with_state_pair_HB_NI_mapped_to_Niedersachsen"] == 1


def test_rossmann_identical_weather_files_are_reported(ross):
    _, report = ross
    assert report.counts["weather_files_identical_to_another"] == 1
    assert any("SchleswigHolstein" in n and "MecklenburgVorpommern" in n for n in report.notes)


def test_rossmann_tables_pass_validation_untouched(ross):
    tables, _ = ross
    for name, df in tables.items():
        _, report = validate(df, name)
        assert report.repairs == {} and report.rows_out == len(df), name


def test_missing_rossmann_column_is_named(ross):
    with pytest.raises(ValueError, match=r"train frame lacks column\(s\) \['Promo'\]"):
        rossmann.adapt(
            pd.DataFrame(
                {
                    "Store": [1],
                    "Date": ["2015-01-01"],
                    "Sales": [1],
                    "Open": [1],
                    "StateHoliday": ["0"],
                    "SchoolHoliday": ["0"],
                }
            ),
            pd.DataFrame(),
            pd.DataFrame(),
            {},
        )


# ----------------------------------------------------------------------------------------- prepare, sample


def test_prepare_writes_parquet_tables_and_the_report(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _raw(_OLD_LINES, old=True).to_parquet(src / online_retail.SOURCE_FILES[0])
    _raw(_NEW_LINES, old=False).to_parquet(src / online_retail.SOURCE_FILES[1])
    paths = prepare("online_retail", src, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["labels.parquet", "orders.parquet"]
    labels, _ = load_table(paths["labels"], "labels")
    assert int(labels["label"].sum()) == 3  # 499999 (older file), 500001, 500006
    report = json.loads((tmp_path / "out" / "adapter_report.json").read_text())
    assert report["counts"]["overlap_invoices_kept_once"] == 1


def test_prepare_refuses_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown dataset 'm5'.*online_retail.*rossmann"):
        prepare("m5", tmp_path, tmp_path)


_SAMPLE_FILES = [("rossmann", t) for t in rossmann.TABLES] + [
    ("online_retail", t) for t in online_retail.TABLES
]


@pytest.mark.parametrize(("dataset", "table"), _SAMPLE_FILES)
def test_sample_file_validates_with_nothing_to_repair(sample_dir, dataset, table):
    df, report = load_table(sample_dir / dataset / f"{table}.csv", table)
    assert report.repairs == {}
    assert report.rows_out == report.rows_in > 0


def test_sample_rossmann_has_30_stores_of_every_type_and_a_2014h2_gap(sample_dir):
    series, _ = load_table(sample_dir / "rossmann" / "series.csv", "series")
    static, _ = load_table(sample_dir / "rossmann" / "static.csv", "static")
    weather, _ = load_table(sample_dir / "rossmann" / "weather.csv", "weather")
    assert series["series_id"].nunique() == 30 and set(static["series_id"]) == set(series["series_id"])
    assert set(static["store_type"]) == {"a", "b", "c", "d"}
    in_h2 = set(series.loc[series["ds"].between("2014-07-01", "2014-12-31"), "series_id"])
    assert len(set(series["series_id"]) - in_h2) >= 1
    assert set(static["region"]) == set(weather["region"])


def test_sample_labels_cover_exactly_the_customer_orders(sample_dir):
    orders, _ = load_table(sample_dir / "online_retail" / "orders.csv", "orders")
    labels, _ = load_table(sample_dir / "online_retail" / "labels.csv", "labels")
    customer_orders = set(orders.loc[orders["customer_id"].notna(), "order_id"])
    assert set(labels["order_id"]) == customer_orders
    assert orders["customer_id"].isna().any()  # guests are in the sample
    assert labels["label"].sum() >= 200


# ------------------------------------------------------------------------------------------- full data


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(ADAPTERS))
def test_full_dataset_adapts_to_valid_tables(shared_data, dataset):
    tables, report = ADAPTERS[dataset](shared_data / dataset)
    for name, df in tables.items():
        _, vreport = validate(df, name)
        assert vreport.repairs == {} and vreport.rows_out == len(df), name
    if dataset == "rossmann":
        assert len(tables["series"]) == 970_379 and tables["series"]["series_id"].nunique() == 1115
        assert report.counts["series_without_2014H2_rows"] == 180
        assert report.counts["weather_files_identical_to_another"] == 1
    else:
        assert report.counts["overlap_invoices_kept_once"] == 1088
        assert not tables["orders"]["order_id"].str.startswith(("C", "A")).any()
