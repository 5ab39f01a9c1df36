"""POST /v1/forecast for aggregates (serving/services/hierarchy.py): ``total``, ``region=<value>`` and
``"levels": ["region", "total"]``, on the session model trained with ``--levels region,total`` (conftest)."""

import pandas as pd
import pytest

pytest.importorskip("hierarchicalforecast")

AUTH = {"X-API-Key": "test-key"}
URL = "/v1/forecast"
ORIGIN = "2015-06-05"


def _post(client, **body):
    return client.post(URL, json=body, headers=AUTH)


def _ok(client, **body):
    response = _post(client, **body)
    assert response.status_code == 200, response.text
    return response.json()


def _regions(trained) -> dict[str, list[str]]:
    static = pd.read_csv(trained["data"] / "static.csv", dtype={"series_id": str})
    return static.groupby("region")["series_id"].apply(list).to_dict()


def _yhat(out, series_id):
    s = next(s for s in out["series"] if s["series_id"] == series_id)
    return [p["yhat"] for p in s["points"]]


def test_total_is_the_sum_of_the_stores_and_of_the_regions(service, trained):
    regions = _regions(trained)
    region_ids = [f"region={r}" for r in regions]
    out = _ok(service, series_ids=["total", *region_ids, *trained["stores"]], origin=ORIGIN)
    assert [s["series_id"] for s in out["series"]][:2] == ["total", region_ids[0]]
    levels = {s["series_id"]: s["level"] for s in out["series"]}
    assert levels["total"] == "total" and levels[region_ids[0]] == "region"
    assert levels[trained["stores"][0]] == "series"
    total = _yhat(out, "total")
    assert len(total) == 14
    stores = [sum(v) for v in zip(*[_yhat(out, s) for s in trained["stores"]], strict=True)]
    by_region = [sum(v) for v in zip(*[_yhat(out, r) for r in region_ids], strict=True)]
    assert stores == pytest.approx(total, rel=1e-9)
    assert by_region == pytest.approx(total, rel=1e-9)
    first = next(s for s in out["series"] if s["series_id"] == "total")["points"][0]
    assert first["yhat_lo"] <= first["yhat"] <= first["yhat_hi"]


def test_levels_name_every_aggregate_of_those_levels(service, trained):
    out = _ok(service, levels=["region", 80, 95], origin=ORIGIN, explain=True)
    ids = {s["series_id"] for s in out["series"]}
    assert ids == {f"region={r}" for r in _regions(trained)}
    assert out["levels"] == [80, 95]
    point = out["series"][0]["points"][0]
    assert set(point["intervals"]) == {"80", "95"}
    assert "promo" in point["effects"]


def test_unknown_aggregate_is_404_and_an_untrained_level_422(service):
    response = _post(service, series_ids=["region=Atlantis"], origin=ORIGIN)
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"unknown_series": ["region=Atlantis"]}
    response = _post(service, levels=["store_type"], origin=ORIGIN)
    assert response.status_code == 422
    assert "store_type" in response.text


def test_what_if_for_an_aggregate_is_refused(service):
    plan = [{"ds": "2015-06-08", "promo": 1}]
    response = _post(service, series_ids=["total"], origin=ORIGIN, covariates=plan)
    assert response.status_code == 422
    assert "not supported for aggregates" in response.text
    assert "member series" in response.text  # says what to do instead
    assert response.json()["error"]["details"] == {
        "limitation": "what_if_on_aggregates",
        "aggregates": ["total"],
    }


def test_an_aggregate_asked_by_its_value_or_as_all_is_404_naming_its_id(service, trained):
    region = sorted(_regions(trained))[0]
    response = _post(service, series_ids=[region, "all"], origin=ORIGIN)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert f"did you mean {{'{region}': 'region={region}', 'all': 'total'}}" in message
