"""orderpulse/commands/order_log.py: features build series, data labels, and train forecast --orders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.io import load_table
from orderpulse.cli import main
from orderpulse.commands.order_log import parse_keys, series_inputs, static_path_for
from training.pyfunc import load_snapshot_model

SAMPLE_ORDERS = Path(__file__).resolve().parents[2] / "data" / "sample" / "online_retail" / "orders.csv"


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_build_series_writes_the_series_and_the_static_table_next_to_it(capsys, tmp_path):
    out = tmp_path / "series.parquet"
    argv = ["features", "build", "series", "--orders", str(SAMPLE_ORDERS), "--freq", "D"]
    code, stdout, err = _run(capsys, argv + ["--by", "country", "--measure", "quantity", "--out", str(out)])
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["static"] == str(tmp_path / "series_static.parquet")
    series, report = load_table(out, "series")
    static, _ = load_table(summary["static"], "static")
    assert report.repairs == {}
    assert set(static["series_id"]) == set(series["series_id"]) == set(static["country"])
    assert series.groupby("series_id")["ds"].max().nunique() == 1  # all padded to the log's last day
    raw = pd.read_csv(SAMPLE_ORDERS)
    assert series["y"].sum() == pytest.approx(raw["quantity"].sum())
    assert summary["report"]["series_out"] == raw["country"].nunique()
    assert "zero_periods_padded_to_table_end" in summary["report"]


def test_an_order_log_passed_as_series_says_to_build_series_first(capsys, tmp_path):
    argv = [
        "features",
        "build",
        "forecast",
        "--series",
        str(SAMPLE_ORDERS),
        "--out",
        str(tmp_path / "f.parquet"),
    ]
    code, _, err = _run(capsys, argv)
    assert code == 2
    assert "looks like an order log" in err and "orderpulse features build series --orders" in err


def test_data_labels_writes_labels_and_counts_pending_orders(capsys, tmp_path):
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "created_at": ["2024-01-01", "2024-01-02", "2024-02-20"],
            "sku": "a",
            "quantity": 1,
            "unit_price": 1.0,
        }
    )
    events = pd.DataFrame({"order_id": ["o1"], "event_at": ["2024-01-03"]})
    orders.to_csv(tmp_path / "orders.csv", index=False)
    events.to_csv(tmp_path / "events.csv", index=False)
    argv = [
        "data",
        "labels",
        "--orders",
        str(tmp_path / "orders.csv"),
        "--events",
        str(tmp_path / "events.csv"),
    ]
    argv += ["--window-days", "14", "--out", str(tmp_path / "labels.csv")]
    code, stdout, err = _run(capsys, argv + ["--pending-out", str(tmp_path / "pending.csv")])
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["report"]["pending_window_open"] == 1
    labels, _ = load_table(tmp_path / "labels.csv", "labels")
    assert labels[["order_id", "label"]].to_dict("list") == {"order_id": ["o1", "o2"], "label": [1, 0]}
    assert pd.read_csv(tmp_path / "pending.csv")["order_id"].tolist() == ["o3"]
    assert "1 orders pending" in err


def test_a_raw_export_becomes_orders_and_events_that_label_its_cancelled_order(capsys, tmp_path):
    # as a shop exports it: its own names, customer ids as floats with blanks, a "C" cancellation invoice,
    # an order number with leading zeros
    export = tmp_path / "export.csv"
    export.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "0536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
        "0536366,22633,WARMER,2,2010-12-01 08:28:00,1.85,,United Kingdom\n"
        "0536367,85123A,HEART,1,2011-01-20 10:00:00,2.55,17851.0,France\n"
        "C0536379,85123A,HEART,-1,2010-12-03 09:41:00,2.55,17850.0,United Kingdom\n"
    )
    orders = tmp_path / "orders.csv"
    argv = ["data", "orders", "--export", str(export), "--out", str(orders), "--cancelled-prefix", "C"]
    code, stdout, err = _run(capsys, argv)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["events"] == str(tmp_path / "orders_events.csv")
    assert (summary["report"]["order_lines"], summary["report"]["cancellation_lines"]) == (3, 1)
    assert "InvoiceNo -> order_id" in err
    table, _ = load_table(orders, "orders")
    assert table["order_id"].tolist() == ["0536365", "0536366", "0536367"]
    argv = ["data", "labels", "--orders", str(orders), "--events", summary["events"], "--window-days", "30"]
    code, stdout, err = _run(capsys, argv + ["--out", str(tmp_path / "labels.csv")])
    assert code == 0, err
    labels, _ = load_table(tmp_path / "labels.csv", "labels")
    assert labels[["order_id", "label"]].to_dict("list") == {"order_id": ["0536365"], "label": [1]}
    report = json.loads(stdout.strip().splitlines()[-1])["report"]
    assert (report["guest_orders_unlabelable"], report["pending_window_open"]) == (1, 1)


def test_an_export_with_unknown_names_exits_2_naming_the_columns_option(capsys, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("Beleg,Artikel,Menge,Zeit,Preis\n1,a,1,2024-01-01,1.0\n")
    argv = ["data", "orders", "--export", str(export), "--out", str(tmp_path / "o.csv")]
    code, _, err = _run(capsys, argv)
    assert code == 2
    assert "export.order_id: no column recognised" in err and "--columns NAME=order_id" in err
    code, _, err = _run(capsys, argv + ["--events-out", str(tmp_path / "e.csv")])
    assert code == 2 and "pass both (e.g. --cancelled-prefix C)" in err
    code, _, err = _run(
        capsys,
        argv + ["--columns", "Beleg=order_id,Artikel=sku,Menge=quantity,Zeit=created_at,Preis=unit_price"],
    )
    assert code == 0, err
    assert load_table(tmp_path / "o.csv", "orders")[0]["sku"].tolist() == ["a"]


def test_keys_and_static_path_helpers():
    assert parse_keys(" country , sku ") == ("country", "sku") and parse_keys(None) == ()
    assert static_path_for(Path("d/series.csv")) == Path("d/series_static.csv")
    assert static_path_for(Path("d/s.csv.gz")) == Path("d/s_static.csv.gz")


def test_training_inputs_need_exactly_one_of_series_and_orders(tmp_path):
    kw = {"freq": "D", "by": None, "measure": "orders", "workdir": tmp_path}
    with pytest.raises(ValueError, match="either --series .* or --orders"):
        series_inputs(None, None, None, **kw)
    with pytest.raises(ValueError, match="either --series .* or --orders"):
        series_inputs(Path("s.csv"), SAMPLE_ORDERS, None, **kw)
    with pytest.raises(ValueError, match="--by and --measure aggregate an order log"):
        series_inputs(Path("s.csv"), None, None, **{**kw, "by": "country"})
    assert series_inputs(Path("s.csv"), None, Path("st.csv"), **kw) == (Path("s.csv"), Path("st.csv"))


def test_train_forecast_from_orders_with_holidays_registers_a_model_that_forecasts_them(capsys, tmp_path):
    rng = np.random.default_rng(0)
    days = pd.date_range("2010-09-01", "2010-12-20", freq="D")
    rows = [
        (f"{c}{d:%m%d}{k}", d + pd.Timedelta(hours=10), c)
        for d in days
        for c in ("United Kingdom", "France")
        for k in range(rng.poisson(8 if c == "France" else 20))
    ]
    orders = pd.DataFrame(rows, columns=["order_id", "created_at", "country"]).assign(
        sku="a", quantity=1, unit_price=2.0
    )
    orders.to_csv(tmp_path / "orders.csv", index=False)
    argv = [
        "train",
        "forecast",
        "--orders",
        str(tmp_path / "orders.csv"),
        "--by",
        "country",
        "--measure",
        "orders",
    ]
    argv += ["--holidays", "static", "--horizon", "14", "--n-windows", "1", "--name", "fromorders"]
    code, stdout, err = _run(capsys, argv + ["--lgbm-params", '{"n_estimators": 20, "num_leaves": 7}'])
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    model = load_snapshot_model(result["model_uri"]).model
    assert model.holidays == "static"
    assert "holiday_public_flag" in model.feature_names_[14]
    assert set(model.tables_["static"]["country"]) == {"United Kingdom", "France"}
    pred = model.predict(14)  # up to 2011-01-03: no covariates table was given, the calendar covers it
    assert pred["ds"].max() == pd.Timestamp("2011-01-03") and len(pred) == 2 * 14
    assert np.isfinite(pred["yhat"]).all()


@pytest.mark.parametrize(
    ("holidays", "message"),
    [("Atlantis", "Unknown holiday calendar 'Atlantis'"), ("static", "no static table was given")],
)
def test_train_forecast_refuses_an_unusable_holiday_calendar_before_training(
    capsys, tmp_path, holidays, message
):
    series = pd.DataFrame({"series_id": "a", "ds": pd.date_range("2024-01-01", periods=60), "y": 1.0})
    series.to_csv(tmp_path / "series.csv", index=False)
    argv = ["train", "forecast", "--series", str(tmp_path / "series.csv"), "--holidays", holidays]
    code, stdout, err = _run(capsys, argv)
    assert code == 2 and stdout == ""
    assert message in err and "train forecast from" not in err
