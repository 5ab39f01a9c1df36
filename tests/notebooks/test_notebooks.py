"""notebooks/: the three planner notebooks run top to bottom on models trained on the shipped sample, and
``orderpulse report forecast|anomalies`` renders them to HTML with the figures embedded.

One session store holds small models (trained once: store creation and training cost ~30 s): a forecaster on
8 Rossmann stores trained up to 28 days before the end of the sample (so the next 28 days are a real forward
forecast with the promo plan known), a second forecaster that is the challenger, and the exception classifier
on the Online Retail sample. Each test asserts on what the notebooks show (figures, tables, text), not only
that they ran.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from orderpulse.cli import main
from orderpulse.commands.report import _ensure_kernelspec, render_notebook

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ROSSMANN = REPO / "data" / "sample" / "rossmann"
RETAIL = REPO / "data" / "sample" / "online_retail"
STORES = ["88", "126", "135", "183", "254", "817", "267", "512"]  # a..d store types, 2014H2 gaps (183, 512)
HORIZON = 28
SMALL = {"n_estimators": 60, "num_leaves": 15}
CHALLENGER = {"n_estimators": 20, "num_leaves": 7}


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Train the models once per session in a private MLflow store; returns the store's URI and paths."""
    from orderpulse.jobs.anomaly import train_anomaly
    from orderpulse.jobs.forecast import train_forecast
    from training.registry import CHALLENGER as ALIAS
    from training.registry import promote, registered_name, resolve

    _ensure_kernelspec("python3")
    root = tmp_path_factory.mktemp("notebooks_store")
    data = root / "data"
    data.mkdir()
    paths = {}
    for name in ("series", "covariates", "static"):
        df = pd.read_csv(ROSSMANN / f"{name}.csv", dtype={"series_id": str})
        paths[name] = data / f"{name}.csv"
        df.loc[df["series_id"].isin(STORES)].to_csv(paths[name], index=False)
    last = pd.read_csv(paths["series"], usecols=["ds"])["ds"].max()
    until = (pd.Timestamp(last) - pd.Timedelta(days=HORIZON)).date().isoformat()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ORDERPULSE_MLRUNS_DIR", str(root))
        args = (paths["series"], paths["covariates"], ROSSMANN / "weather.csv", paths["static"])
        kw = {"horizon": HORIZON, "n_windows": 1, "until": until, "hierarchy_levels": "region,total"}
        first = train_forecast(*args, params=SMALL, **kw)
        second = train_forecast(*args, params=CHALLENGER, **kw)
        name = registered_name("orderpulse", "forecast")
        if (
            ALIAS
            not in resolve(f"models:/{name}/{first['version']}").aliases
            + resolve(f"models:/{name}/{second['version']}").aliases
        ):
            loser = first if second["alias"] == "champion" else second
            promote(name, loser["version"], to_alias=ALIAS)
        train_anomaly(RETAIL / "orders.csv", RETAIL / "labels.csv")
    return {"uri": uri, "root": str(root), "until": until, "series": str(paths["series"])}


@pytest.fixture(autouse=True)
def isolated_mlflow(store: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Overrides the conftest fixture: every test here reads the session store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    monkeypatch.setenv("ORDERPULSE_MLRUNS_DIR", store["root"])
    return store["uri"]


@pytest.fixture(scope="module")
def forecast_report(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("forecast_report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        result = _Capture().run(
            # "88.0": a series asked for as a whole float is the model's "88" (features.ids.ids_as_known)
            ["report", "forecast", "--series", "88.0", "--series", "817", "--out", str(out)]
        )
    return {**result, "nb": nbformat.read(result["notebook"], as_version=4)}


@pytest.fixture(scope="module")
def anomalies_report(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("anomalies_report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        result = _Capture().run(
            ["report", "anomalies", "--from", "2011-06-01", "--to", "2011-07-01", "--out", str(out)]
        )
    return {**result, "nb": nbformat.read(result["notebook"], as_version=4)}


@pytest.fixture(scope="module")
def whatif_run(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("whatif")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        result = render_notebook(
            "02_promo_weather_whatif.ipynb",
            {"series_ids": ["817", "88"], "scenario_days": 5, "temp_delta_c": -8.0},
            out,
            "whatif",
        )
    return {**result, "nb": nbformat.read(result["notebook"], as_version=4)}


class _Capture:
    """Run the CLI in-process from a module-scoped fixture (capsys is function-scoped) and parse its JSON line."""

    def run(self, argv: list[str]) -> dict:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code in (0, None), err.getvalue()
        return json.loads(out.getvalue().strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ helpers
def _outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _images(nb) -> list[bytes]:
    return [
        base64.b64decode(o["data"]["image/png"])
        for o in _outputs(nb)
        if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
    ]


def _captions(nb) -> list[str]:
    html = [o["data"]["text/html"] for o in _outputs(nb) if "text/html" in o.get("data", {})]
    return [m for h in html for m in re.findall(r"<caption>(.*?)</caption>", h, flags=re.S)]


def _markdown(nb) -> str:
    return "\n".join(o["data"]["text/markdown"] for o in _outputs(nb) if "text/markdown" in o.get("data", {}))


def _table(nb, caption: str) -> pd.DataFrame:
    """A table the notebook displayed, read back from its HTML (values as the formatted text)."""
    from bs4 import BeautifulSoup  # nbconvert's dependency

    for o in _outputs(nb):
        h = o.get("data", {}).get("text/html", "")
        if f"<caption>{caption}" in h:
            table = BeautifulSoup(h, "html.parser").find("table")
            header = [th.get_text(strip=True) for th in table.find("thead").find_all("th")]
            rows = [
                [td.get_text(strip=True) for td in tr.find_all(["td", "th"])]
                for tr in table.find("tbody").find_all("tr")
            ]
            return pd.DataFrame(rows, columns=header)
    raise AssertionError(f"no table captioned {caption!r}; captions: {_captions(nb)}")


def _no_errors(nb) -> None:
    errors = [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert not errors, errors
    warnings = [
        o["text"] for o in _outputs(nb) if o.get("output_type") == "stream" and o.get("name") == "stderr"
    ]
    assert not warnings, warnings


# ------------------------------------------------------------------------------------------ committed files
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs_and_no_execution_counts(path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: strip outputs (nbstripout {path})"
            assert cell.execution_count is None, f"{path.name}: strip execution counts"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_first_code_cell_of_every_notebook_is_tagged_parameters(path: Path):
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0]


def test_the_three_planner_notebooks_exist():
    names = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert {
        "01_forecast_review.ipynb",
        "02_promo_weather_whatif.ipynb",
        "03_flagged_orders_review.ipynb",
    } <= names


# ------------------------------------------------------------------------------------------ report command
def test_report_of_an_unknown_model_exits_2_without_starting_a_kernel(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "forecast", "--model", "models:/nope@champion", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No registered model 'nope'" in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ 01 forecast review
def test_forecast_report_writes_html_with_the_figures_embedded(forecast_report):
    html = Path(forecast_report["html"]).read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 8
    assert re.search(r"<img[^>]+src=\"data:image/png;base64,", html)
    assert "load_forecast_model" not in html  # code hidden in the report
    assert "Traceback" not in html


def test_forecast_notebook_draws_every_figure_without_errors(forecast_report):
    nb = forecast_report["nb"]
    _no_errors(nb)
    images = _images(nb)
    # backtest, segments, daily total, regions+total backtest, regions+total next weeks, WAPE by series,
    # worst series, coverage, next weeks, drivers
    assert len(images) == 10
    assert all(img.startswith(b"\x89PNG") and len(img) > 10_000 for img in images)


def test_forecast_notebook_shows_the_accuracy_tables(forecast_report):
    captions = _captions(forecast_report["nb"])
    for caption in (
        "Accuracy by series",
        "Accuracy by segment",
        "Daily total across all series",
        "The 3 worst series by WAPE",
        "Interval coverage by forecast step",
        "Average effect of each feature family on the coming forecast (2 of 8 series)",
        "Champion vs challenger (backtest metrics from the registry)",
    ):
        assert caption in captions


def test_forecast_notebook_compares_reconciliation_methods_per_level(forecast_report):
    table = _table(forecast_report["nb"], "Accuracy per level and method")
    assert set(table["level"]) == {"region", "total"}
    assert {"bottom_up", "mint_shrink"} <= set(table["method"])
    chosen = table.loc[table["chosen"] == "True"]
    assert len(chosen) == 2 and chosen["method"].nunique() == 1  # one served method, one row per level
    assert chosen["coverage_80"].str.endswith("%").all()


def test_forecast_notebook_regions_add_up_to_the_total_in_the_coming_weeks(forecast_report):
    table = _table(forecast_report["nb"], "Coming weeks per aggregate: the forecast summed over the days")
    value = table["forecast_sum"].str.replace(",", "").astype(float)
    regions = value[table["level"] == "region"]
    total = float(value[table["level"] == "total"].iloc[0])
    assert len(regions) == 7  # the 8 stores are in 7 regions (2 in Bayern)
    assert total > 0
    assert abs(regions.sum() - total) <= 4  # coherent; each shown value is rounded to a unit


def test_forecast_notebook_accuracy_table_has_one_row_per_series(forecast_report):
    table = _table(forecast_report["nb"], "Accuracy by series")
    assert list(table["series_id"].astype(str)) == sorted(STORES, key=int)  # numeric ids by number
    assert {"wape", "bias", "coverage_80"} <= set(table.columns)


def test_forecast_notebook_plots_the_series_asked_for(forecast_report):
    injected = [c for c in forecast_report["nb"].cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "series_ids = ['88.0', '817']" in injected[0].source
    shown = [
        o.get("data", {}).get("text/markdown", "")
        for c in forecast_report["nb"].cells
        for o in c.get("outputs", [])
    ]
    assert "**Note:** series ids read as the model knows them: {'88.0': '88'}." in shown


def test_forecast_notebook_forecasts_the_next_weeks_after_the_training_history(forecast_report, store):
    md = _markdown(forecast_report["nb"])
    assert "Backtest predictions from the backtest logged with run" in md
    # trained until 28 days before the end: the promo plan covers the next 28 days, no fallback origin
    assert "Shown instead" not in md
    assert f"history 2013-01-01 .. {store['until']}" in md


def test_forecast_notebook_shows_no_fitted_values_as_the_next_weeks(store, tmp_path):
    """With a plan that ends on the last actual, nothing after it can be forecast: the notebook says so and
    shows no forecast of the training period (it used to move the origin back and show fitted values)."""
    covariates = pd.read_csv(ROSSMANN / "covariates.csv", dtype={"series_id": str}, parse_dates=["ds"])
    cut = covariates.loc[covariates["series_id"].isin(STORES) & (covariates["ds"] <= store["until"])]
    cut.to_csv(tmp_path / "plan.csv", index=False)
    result = render_notebook(
        "01_forecast_review.ipynb",
        {"series_ids": ["88", "817"], "covariates_path": str(tmp_path / "plan.csv")},
        tmp_path / "out",
        "forecast_review",
    )
    nb = nbformat.read(result["notebook"], as_version=4)
    _no_errors(nb)
    md = _markdown(nb)
    assert "No forward forecast is shown" in md and "No forecast of the next weeks to show" in md
    assert "Shown instead" not in md
    assert len(_images(nb)) == 7  # the next weeks (series, regions+total) and their drivers are not drawn
    assert not any(c.startswith("Average effect of each feature family") for c in _captions(nb))


def test_forecast_notebook_compares_champion_and_challenger(forecast_report):
    md = _markdown(forecast_report["nb"])
    assert re.search(r"champion v\d+ vs challenger v\d+: evaluated on the same backtest windows", md)
    table = _table(forecast_report["nb"], "Champion vs challenger (backtest metrics from the registry)")
    assert "backtest_wape" in set(table["metric"])


# ------------------------------------------------------------------------------------------ 02 what-if
def test_whatif_notebook_plots_promo_and_weather_scenarios(whatif_run):
    nb = whatif_run["nb"]
    _no_errors(nb)
    assert len(_images(nb)) == 4  # promo: forecasts + families; weather: forecasts + families
    captions = " | ".join(_captions(nb))
    for caption in (
        "Promo scenario: forecast over the changed days",
        "Promo scenario: change by feature family",
        "Weather scenario: forecast over the changed days",
        "Weather scenario: change by feature family",
    ):
        assert caption in captions


def test_whatif_notebook_promo_week_raises_the_forecast_of_the_chosen_series(whatif_run):
    table = _table(whatif_run["nb"], "Promo scenario: forecast over the changed days")
    assert list(table["series_id"].astype(str)) == ["817", "88", "all"]
    assert (table["days"] == "5").all()
    deltas = table["delta"].astype(str).str.replace(",", "").astype(float)
    assert (deltas[:2] > 0).all()  # the sample's promo lifts sales


# ------------------------------------------------------------------------------------------ 03 flagged orders
def test_anomalies_report_writes_html_with_the_figures_embedded(anomalies_report):
    html = Path(anomalies_report["html"]).read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 8
    assert Path(anomalies_report["notebook"]).name == "flagged_orders_review.ipynb"


def test_flagged_orders_notebook_draws_distribution_curves_shap_and_waterfalls(anomalies_report):
    nb = anomalies_report["nb"]
    _no_errors(nb)
    # scores, precision/recall vs threshold, calibration, recurring reasons, SHAP summary, 3 waterfalls
    assert len(_images(nb)) == 8
    for caption in (
        "Flagged orders of the period",
        "Precision and recall by flag threshold (labelled orders not trained on)",
        "Reasons that recur among flagged orders",
    ):
        assert caption in _captions(nb)


def test_flagged_orders_notebook_reviews_the_period_asked_for(anomalies_report):
    md = _markdown(anomalies_report["nb"])
    assert "**Period** 2011-06-01 00:00 .. 2011-07-01 00:00" in md
    assert re.search(r"\*\*\d+ flagged\*\*", md)
    flagged = _table(anomalies_report["nb"], "Flagged orders of the period")
    assert len(flagged) > 0
    assert flagged["reason_1"].astype(str).str.len().min() > 10  # every flagged order has a reason sentence
