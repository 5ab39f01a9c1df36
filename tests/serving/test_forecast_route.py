"""POST /v1/forecast with the real forecaster trained on 6 stores of data/sample (see conftest ``trained``)."""

import math

import numpy as np
import pandas as pd
import pytest

from serving.services.forecast_context import forecast_smoke_check

AUTH = {"X-API-Key": "test-key"}
URL = "/v1/forecast"
ORIGIN = "2015-06-05"  # inside the sample: the stored plan covers the next 14 days


def _forecast(client, **body):
    response = client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _points(out, series_id):
    return next(s for s in out["series"] if s["series_id"] == series_id)["points"]


def test_forecast_gives_every_step_of_every_series_with_an_interval(service, trained):
    stores = trained["stores"][:2]
    out = _forecast(service, series_ids=stores, origin=ORIGIN)
    assert out["horizon"] == 14 and out["levels"] == [80] and out["origin"] == "2015-06-05T00:00:00"
    assert [s["series_id"] for s in out["series"]] == stores
    for store in stores:
        points = _points(out, store)
        assert [p["step"] for p in points] == list(range(1, 15))
        assert points[0]["ds"] == "2015-06-06T00:00:00" and points[-1]["ds"] == "2015-06-19T00:00:00"
        assert all(p["yhat_lo"] <= p["yhat"] <= p["yhat_hi"] for p in points)
    assert out["model"]["name"] == "svc-forecast" and out["what_if"] is False


def test_forecast_equals_the_cli_for_the_same_inputs(service, trained, tmp_path, monkeypatch):
    from orderpulse.jobs.forecast import forecast_to_file

    stores = trained["stores"][:3]
    out = _forecast(service, series_ids=stores, horizon=14, origin="2015-05-20", explain=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["tracking_uri"])
    forecast_to_file(
        "models:/svc-forecast@champion",
        trained["data"] / "series.csv",
        tmp_path / "f.csv",
        horizon=14,
        level=80,
        origin="2015-05-20",
        explain=True,
    )
    cli = pd.read_csv(tmp_path / "f.csv", dtype={"series_id": str}, float_precision="round_trip")
    for store in stores:
        api = pd.DataFrame(_points(out, store))
        mine = cli.loc[cli["series_id"] == store].reset_index(drop=True)
        assert (api["ds"].str[:10] == mine["ds"].str[:10]).all()
        for col in ("yhat", "yhat_lo", "yhat_hi", "base"):
            assert api[col].tolist() == mine[col].tolist(), col
        effects = pd.DataFrame(api["effects"].tolist())
        for family in effects.columns:
            assert effects[family].tolist() == mine[f"effect_{family}"].tolist(), family


def test_forecast_to_a_parquet_path_writes_parquet_with_the_csv_values(trained, tmp_path, monkeypatch):
    from orderpulse.jobs.forecast import forecast_to_file

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["tracking_uri"])
    for name in ("f.csv", "f.parquet"):
        forecast_to_file(
            "models:/svc-forecast@champion",
            trained["data"] / "series.csv",
            tmp_path / name,
            horizon=14,
            level=80,
            origin="2015-05-20",
        )
    assert (tmp_path / "f.parquet").read_bytes()[:4] == b"PAR1"  # not CSV text under a .parquet name
    parquet = pd.read_parquet(tmp_path / "f.parquet")
    csv = pd.read_csv(tmp_path / "f.csv", dtype={"series_id": str}, float_precision="round_trip")
    assert len(parquet) == len(csv) > 0
    assert parquet["series_id"].astype(str).tolist() == csv["series_id"].tolist()
    assert parquet["yhat"].tolist() == csv["yhat"].tolist()


def test_explain_gives_family_contributions_that_add_up_to_log1p_yhat(service, trained):
    points = _points(
        _forecast(service, series_id=trained["stores"][0], origin=ORIGIN, explain=True), trained["stores"][0]
    )
    open_point = next(p for p in points if p["yhat"] > 0)
    assert {"level/lags", "calendar", "promo"} <= set(open_point["contributions"])
    total = open_point["base"] + sum(open_point["contributions"].values())
    assert total == pytest.approx(math.log1p(open_point["yhat"]), abs=1e-9)
    for family, contribution in open_point["contributions"].items():
        assert open_point["effects"][family] == pytest.approx(math.expm1(contribution))


def test_several_levels_give_an_interval_per_level(service, trained):
    point = _points(
        _forecast(service, series_id=trained["stores"][0], origin=ORIGIN, levels=[80, 95]),
        trained["stores"][0],
    )[0]
    lo80, hi80 = point["intervals"]["80"]
    lo95, hi95 = point["intervals"]["95"]
    assert (point["yhat_lo"], point["yhat_hi"]) == (lo80, hi80)
    assert lo95 <= lo80 <= point["yhat"] <= hi80 <= hi95


def test_a_changed_promo_plan_is_a_what_if_with_a_non_zero_delta(service):
    # store 88 has no promo 2015-06-08 .. 06-12 in the stored plan; plan one
    plan = [{"series_id": "88", "ds": f"2015-06-{d:02d}", "promo": 1} for d in range(8, 13)]
    out = _forecast(service, series_id="88", origin=ORIGIN, covariates=plan)
    assert out["what_if"] is True and out["baseline_available"] is True
    points = {p["ds"][:10]: p for p in _points(out, "88")}
    stored = _points(_forecast(service, series_id="88", origin=ORIGIN), "88")
    for p, s in zip(points.values(), stored, strict=True):
        assert p["yhat_baseline"] == s["yhat"]
        assert p["delta"] == pytest.approx(p["yhat"] - s["yhat"])
    assert points["2015-06-09"]["delta"] > 0


def test_a_what_if_equals_the_planner_notebooks_what_if(service, served_models):
    from training.forecast.whatif import what_if

    plan = [{"series_id": "88", "ds": f"2015-06-{d:02d}", "promo": 1} for d in range(8, 13)]
    api = pd.DataFrame(_points(_forecast(service, series_id="88", origin=ORIGIN, covariates=plan), "88"))
    wrapper = served_models["forecast"].model
    expected = what_if(
        wrapper.model,
        wrapper.tables["series"],
        covariates=wrapper.tables["covariates"],
        weather=wrapper.tables["weather"],
        covariate_changes=pd.DataFrame(plan),
        horizon=14,
        origin=ORIGIN,
        explain=False,
    )
    expected = expected.loc[expected["series_id"] == "88"].reset_index(drop=True)
    assert api["yhat"].tolist() == expected["yhat"].tolist()
    assert api["yhat_baseline"].tolist() == expected["yhat_base"].tolist()
    assert api["delta"].tolist() == expected["delta"].tolist()


def test_a_plan_row_without_series_id_applies_to_every_requested_series(service):
    plan = [{"ds": f"2015-06-{d:02d}", "promo": 1} for d in range(8, 13)]
    out = _forecast(service, series_ids=["88", "126"], origin=ORIGIN, covariates=plan)
    for store in ("88", "126"):
        assert any(abs(p["delta"]) > 0 for p in _points(out, store))


def test_a_series_id_sent_as_a_whole_float_is_answered_for_the_id_the_model_knows(service):
    plan = [{"series_id": "88.0", "ds": f"2015-06-{d:02d}", "promo": 1} for d in range(8, 13)]
    plain = _forecast(
        service, series_ids=["88", "126"], origin=ORIGIN, covariates=[{**r, "series_id": "88"} for r in plan]
    )
    floats = _forecast(service, series_ids=["88.0", "126", "88"], origin=ORIGIN, covariates=plan)
    assert [s["series_id"] for s in floats["series"]] == ["88", "126"]  # "88.0" and "88" are one series
    assert floats["ids_read_as"] == {"88.0": "88"} and plain["ids_read_as"] is None
    assert _points(floats, "88") == _points(plain, "88")  # the plan row for "88.0" applied to "88"
    assert any(abs(p["delta"]) > 0 for p in _points(floats, "88"))
    text = service.get("/metrics").text
    assert 'orderpulse_request_ids_whole_float_repaired_total{request="forecast"} 1.0' in text
    response = service.post(URL, json={"series_ids": ["88.5", "999999.0"]}, headers=AUTH)
    assert response.json()["error"]["details"] == {"unknown_series": ["88.5", "999999.0"]}


def test_unknown_series_is_404_with_the_list(service):
    response = service.post(URL, json={"series_ids": ["88", "nope", "999999"]}, headers=AUTH)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_series" and error["details"] == {"unknown_series": ["nope", "999999"]}


def test_missing_horizon_covariates_is_400_and_says_to_send_a_plan(service):
    response = service.post(URL, json={"series_id": "88"}, headers=AUTH)  # from the data end 2015-06-19
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "data_validation"
    assert error["details"][0]["table"] == "covariates"
    assert "stored covariates end at 2015-06-19" in error["message"]
    assert "needs the plan for the horizon in the request" in error["message"]


def test_a_plan_for_the_horizon_lets_a_forecast_go_past_the_data_end(service):
    days = pd.date_range("2015-06-20", periods=14, freq="D")
    plan = [
        {"ds": str(d.date()), "promo": 0, "state_holiday": "0", "school_holiday": 0, "promo2_active": 0}
        for d in days
    ]
    out = _forecast(service, series_id="88", covariates=plan)
    assert out["origin"] == "2015-06-19T00:00:00" and out["baseline_available"] is False
    assert "stored plan does not cover the horizon" in out["note"]
    assert [p["delta"] for p in _points(out, "88")] == [None] * 14


def test_a_plan_with_a_column_the_model_never_saw_is_400(service):
    response = service.post(
        URL,
        json={"series_id": "88", "origin": ORIGIN, "covariates": [{"ds": "2015-06-08", "discount": 0.2}]},
        headers=AUTH,
    )
    assert response.status_code == 400
    assert "columns the model was not trained with" in response.json()["error"]["message"]


def test_a_horizon_longer_than_the_models_is_422(service):
    response = service.post(URL, json={"series_id": "88", "horizon": 30}, headers=AUTH)
    assert response.status_code == 422
    assert "longer than the model's 14 steps" in response.json()["error"]["message"]


def test_a_request_without_series_is_422(service):
    response = service.post(URL, json={"horizon": 7}, headers=AUTH)
    assert response.status_code == 422
    assert "name the series to forecast" in response.json()["error"]["message"]


def test_too_many_series_is_413(make_service):
    client = make_service(max_forecast_series=2)
    response = client.post(URL, json={"series_ids": ["88", "89", "126"]}, headers=AUTH)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_series"


def test_every_forecast_is_recorded_one_decision_per_series(service):
    out = _forecast(
        service,
        series_ids=["88", "126"],
        origin=ORIGIN,
        covariates=[{"series_id": "88", "ds": "2015-06-09", "promo": 1}],
    )
    assert service.app.state.audit.count() == 2
    record = service.get(f"/v1/decisions/{out['series'][0]['decision_id']}", headers=AUTH).json()
    assert record["kind"] == "forecast" and record["model_name"] == "svc-forecast"
    assert record["input"]["series_id"] == "88" and record["input"]["covariates"][0]["promo"] == 1
    assert (
        record["features"]["origin"] == "2015-06-05T00:00:00"
        and record["features"]["plan_source"] == "request+stored"
    )
    planned = {r["ds"][:10]: r["promo"] for r in record["features"]["covariates"]}
    assert planned["2015-06-09"] == 1 and planned["2015-06-15"] == 1 and len(planned) == 14
    assert [p["yhat"] for p in record["output"]["points"]] == [p["yhat"] for p in out["series"][0]["points"]]


def test_forecasting_without_a_forecast_model_is_503(make_service):
    client = make_service(kinds=("anomaly",))
    response = client.post(URL, json={"series_id": "88"}, headers=AUTH)
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_not_loaded"


def test_forecast_smoke_check_passes_the_real_model_and_refuses_a_broken_one(served_models):
    import dataclasses
    from types import SimpleNamespace

    real = served_models["forecast"]
    forecast_smoke_check(real)

    class Broken:
        horizon, freq = 14, "D"

        def predict(self, *args, **kwargs):
            return pd.DataFrame({"yhat": [np.nan]})

    broken = SimpleNamespace(model=Broken(), tables=real.model.tables)
    with pytest.raises(ValueError, match="not one value >= 0"):
        forecast_smoke_check(dataclasses.replace(real, model=broken))


# ---------------------------------------------------------------------------------------------- closures
def _plan_after_data_end():
    days = pd.date_range("2015-06-20", periods=14, freq="D")
    return [
        {"ds": str(d.date()), "promo": 0, "state_holiday": "0", "school_holiday": 0, "promo2_active": 0}
        for d in days
    ]


def test_known_closures_after_the_data_end_are_forecast_zero_and_the_other_days_unchanged(service, trained):
    store, other = trained["stores"][:2]
    plan = _plan_after_data_end()
    base = _forecast(service, series_ids=[store, other], covariates=plan)
    closures = [{"ds": "2015-06-24"}, {"series_id": store, "ds": "2015-06-26", "open": 0}]
    out = _forecast(service, series_ids=[store, other], covariates=plan, closures=closures)
    for sid, closed in ((store, {"2015-06-24", "2015-06-26"}), (other, {"2015-06-24"})):
        before, after = _points(base, sid), _points(out, sid)
        for b, a in zip(before, after, strict=True):
            if a["ds"][:10] in closed:
                assert a["yhat"] == 0.0 and a["yhat_lo"] == 0.0 and a["yhat_hi"] == 0.0
            else:  # a closure is not a feature of other days (the direct model has no lags inside the horizon)
                assert a["yhat"] == b["yhat"], a["ds"]
        assert before[4]["yhat"] > 0  # 2015-06-24 was forecast open without the closure


def test_closures_give_the_cli_forecast_of_a_series_file_with_the_same_future_rows(
    service, trained, tmp_path, monkeypatch
):
    from orderpulse.jobs.forecast import forecast_to_file

    store = trained["stores"][0]
    out = _forecast(
        service, series_id=store, horizon=14, origin="2015-05-20", closures=[{"ds": "2015-05-27"}]
    )
    series = pd.read_csv(trained["data"] / "series.csv", dtype={"series_id": str})
    series = series.loc[series["series_id"] == store]
    on_day = series["ds"].str[:10] == "2015-05-27"
    assert series.loc[on_day, "open"].tolist() == [1]  # open in the data: the closure is the request's
    series.loc[on_day, ["open", "y"]] = [0, 0]
    series.to_csv(tmp_path / "series.csv", index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["tracking_uri"])
    forecast_to_file(
        "models:/svc-forecast@champion",
        tmp_path / "series.csv",
        tmp_path / "f.csv",
        horizon=14,
        level=80,
        origin="2015-05-20",
    )
    cli = pd.read_csv(tmp_path / "f.csv", dtype={"series_id": str}, float_precision="round_trip")
    api = pd.DataFrame(_points(out, store))
    assert api["yhat"].tolist() == cli["yhat"].tolist()
    assert api.loc[api["ds"].str[:10] == "2015-05-27", "yhat"].tolist() == [0.0]


def test_an_open_row_overrides_a_stored_closure(service, trained):
    series = pd.read_csv(trained["data"] / "series.csv", dtype={"series_id": str})
    store = trained["stores"][0]
    closed = series.loc[
        (series["series_id"] == store) & (series["open"] == 0) & (series["ds"] > "2015-06-05"), "ds"
    ]
    day = closed.iloc[0][:10]  # a Sunday the snapshot knows to be closed
    stored = {
        p["ds"][:10]: p["yhat"] for p in _points(_forecast(service, series_id=store, origin=ORIGIN), store)
    }
    assert stored[day] == 0.0
    out = _forecast(service, series_id=store, origin=ORIGIN, closures=[{"ds": day, "open": 1}])
    assert {p["ds"][:10]: p["yhat"] for p in _points(out, store)}[day] > 0


def test_closures_are_recorded_with_the_decision_of_their_series(service, trained):
    store, other = trained["stores"][:2]
    out = _forecast(
        service,
        series_ids=[store, other],
        origin=ORIGIN,
        closures=[{"series_id": store, "ds": "2015-06-10"}, {"ds": "2015-06-11"}],
    )
    by_series = {s["series_id"]: s["decision_id"] for s in out["series"]}
    recorded = service.get(f"/v1/decisions/{by_series[other]}", headers=AUTH).json()
    assert recorded["input"]["closures"] == [{"series_id": None, "ds": "2015-06-11T00:00:00", "open": 0}]


@pytest.mark.parametrize(
    ("closure", "column", "issue"),
    [
        ({"series_id": "999", "ds": "2015-06-10"}, "series_id", "outside this request"),
        ({"ds": "2015-06-05"}, "ds", "not forecast steps"),  # the origin itself is history
        ({"ds": "2015-07-30"}, "ds", "not forecast steps"),  # after the horizon
        ({"ds": "2015-06-10T12:00:00"}, "ds", "off the model's grid"),
    ],
)
def test_a_closure_that_is_not_a_forecast_step_of_the_request_is_400(
    service, trained, closure, column, issue
):
    body = {"series_id": trained["stores"][0], "origin": ORIGIN, "closures": [closure]}
    response = service.post(URL, json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    problem = response.json()["error"]["details"][0]
    assert (problem["table"], problem["column"]) == ("closures", column) and issue in problem["issue"]


def test_two_closures_for_one_step_are_400_and_open_must_be_0_or_1(service, trained):
    store = trained["stores"][0]
    twice = [{"series_id": store, "ds": "2015-06-10"}, {"series_id": store, "ds": "2015-06-10", "open": 1}]
    response = service.post(URL, json={"series_id": store, "origin": ORIGIN, "closures": twice}, headers=AUTH)
    assert response.status_code == 400 and "several rows" in response.text
    bad = [{"ds": "2015-06-10", "open": 2}]
    response = service.post(URL, json={"series_id": store, "origin": ORIGIN, "closures": bad}, headers=AUTH)
    assert response.status_code == 422 and "open" in response.text
