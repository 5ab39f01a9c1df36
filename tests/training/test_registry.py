import shutil

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient

from training import registry, tracking
from training.registry import (
    Baseline,
    ModelNotFoundError,
    NotComparableError,
    ResolvedModel,
    promote,
    register,
    resolve,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NAME = "demand"


class AddOne(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return model_input + 1


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store holding one logged tiny pyfunc model, built once and copied per test (MLflow set-up is slow)."""
    folder = tmp_path_factory.mktemp("registry-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        with tracking.start_run("registry-tests") as run:
            info = mlflow.pyfunc.log_model(name="model", python_model=AddOne(), pip_requirements=[])
        mlflow.set_tracking_uri(None)
    return {"db": folder / "mlflow.db", "model_uri": info.model_uri, "run_id": run.info.run_id}


@pytest.fixture
def store(template, tmp_path, monkeypatch):
    shutil.copy(template["db"], tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield template
    mlflow.set_tracking_uri(None)


def _register(store, value, eval_key="backtest:A", metric="backtest_wape", **kw):
    return register(store["model_uri"], NAME, metric=metric, value=value, eval_key=eval_key, **kw)


def _aliases():
    return dict(MlflowClient().get_registered_model(NAME).aliases)


# ------------------------------------------------------------------------------------------ register
def test_first_version_becomes_champion(store):
    d = _register(store, 0.20)
    assert (d.version, d.alias, d.previous_champion, d.reason) == (1, "champion", None, "no champion yet")
    assert _aliases() == {"champion": 1}
    tags = MlflowClient().get_model_version(NAME, "1").tags
    assert tags["metric.backtest_wape"] == "0.2" and tags["eval_key"] == "backtest:A"
    assert tags["registry.decision"] == "@champion: no champion yet"
    assert d.summary() == {
        "registered": f"models:/{NAME}/1",
        "version": 1,
        "alias": "champion",
        "decision": "no champion yet",
        "gate": None,
        "gate_passed": True,
        "compared_with": None,
        "reevaluated": False,
    }


def test_a_worse_version_becomes_challenger_and_the_champion_stays(store):
    _register(store, 0.20)
    d = _register(store, 0.25)
    assert (d.version, d.alias, d.compared, d.previous_champion, d.previous_value) == (
        2,
        "challenger",
        True,
        1,
        0.20,
    )
    assert "does not beat champion v1" in d.reason
    assert _aliases() == {"champion": 1, "challenger": 2}


def test_a_better_version_takes_champion_and_the_old_champion_loses_it(store):
    _register(store, 0.20)
    _register(store, 0.25)
    d = _register(store, 0.15)
    assert (d.version, d.alias) == (3, "champion")
    assert _aliases() == {"champion": 3, "challenger": 2}
    assert MlflowClient().get_model_version(NAME, "1").aliases == []


def test_an_equal_metric_does_not_take_champion(store):
    _register(store, 0.20)
    assert _register(store, 0.20).alias == "challenger"


def test_higher_is_better_metrics_compare_upwards(store):
    _register(store, 0.50, metric="auprc", higher_is_better=True)
    d = _register(store, 0.60, metric="auprc", higher_is_better=True)
    assert (d.alias, d.metric) == ("champion", "metric.auprc")
    assert MlflowClient().get_model_version(NAME, "2").tags["metric_direction"] == "higher_is_better"


def test_versions_evaluated_on_different_windows_are_not_compared(store):
    _register(store, 0.20, eval_key="backtest:A")
    d = _register(store, 0.01, eval_key="backtest:B")
    assert (d.alias, d.compared) == ("challenger", False)
    assert "not compared: champion v1 was evaluated on 'backtest:A', this version on 'backtest:B'" in d.reason
    assert _aliases() == {"champion": 1, "challenger": 2}


def test_a_nan_metric_never_takes_champion(store):
    _register(store, 0.20)
    d = _register(store, float("nan"))
    assert d.alias == "challenger" and "is NaN" in d.reason


# ------------------------------------------------------------------------------------------ baseline gate
def test_a_first_version_that_loses_to_seasonal_naive_is_registered_but_never_champion(store):
    d = _register(store, 0.316, baseline=Baseline("seasonal naive", 0.238))
    assert (d.version, d.alias, d.gate_passed) == (1, "challenger", False)
    assert d.reason == (
        "never champion: metric.backtest_wape 0.316 does not beat seasonal naive's 0.238, both evaluated on "
        "backtest:A"
    )
    assert _aliases() == {"challenger": 1}
    tags = MlflowClient().get_model_version(NAME, "1").tags
    assert tags["registry.gate"].startswith("metric.backtest_wape 0.316 does not beat seasonal naive's 0.238")
    assert tags["registry.decision"] == f"@challenger: {d.reason}"
    assert d.summary()["gate_passed"] is False and d.summary()["decision"] == d.reason


def test_a_version_that_loses_to_the_baseline_never_replaces_a_worse_champion(store):
    _register(store, 0.40)  # an old champion registered without a gate
    d = _register(store, 0.30, baseline=Baseline("seasonal naive", 0.25))
    assert (d.alias, d.gate_passed, d.compared) == ("challenger", False, False)
    assert _aliases() == {"champion": 1, "challenger": 2}


def test_an_equal_baseline_value_does_not_pass_the_gate(store):
    d = _register(store, 0.25, baseline=Baseline("seasonal naive", 0.25))
    assert (d.alias, d.gate_passed) == ("challenger", False)


def test_a_version_that_beats_the_baseline_becomes_champion_and_says_so(store):
    d = _register(store, 0.20, baseline=Baseline("seasonal naive", 0.25))
    assert (d.alias, d.gate_passed) == ("champion", True)
    assert d.reason == (
        "no champion yet (metric.backtest_wape 0.2 < seasonal naive's 0.25, both evaluated on backtest:A)"
    )


def test_auprc_must_beat_the_base_rate_upwards(store):
    lose = _register(
        store, 0.03, metric="valid_auprc", higher_is_better=True, baseline=Baseline("the base rate", 0.05)
    )
    win = _register(
        store, 0.30, metric="valid_auprc", higher_is_better=True, baseline=Baseline("the base rate", 0.05)
    )
    assert (lose.alias, lose.gate_passed, win.alias, win.gate_passed) == (
        "challenger",
        False,
        "champion",
        True,
    )
    assert "0.03 does not beat the base rate's 0.05" in lose.reason


def test_a_nan_metric_fails_the_gate(store):
    d = _register(store, float("nan"), baseline=Baseline("seasonal naive", 0.25))
    assert (d.alias, d.gate_passed) == ("challenger", False)
    assert "cannot be compared with seasonal naive" in d.reason


# ------------------------------------------------------------------------------------------ re-evaluation
def test_a_champion_evaluated_on_other_data_is_re_evaluated_on_the_new_one(store):
    _register(store, 0.10, eval_key="backtest:W:data=24-series")
    seen = []

    def reevaluate(champion):
        seen.append(int(champion.version))
        return 0.30  # the champion's recipe on the 40-series data

    d = _register(store, 0.25, eval_key="backtest:W:data=40-series", reevaluate=reevaluate)
    assert seen == [1]
    assert (d.alias, d.compared, d.reevaluated, d.previous_value) == ("champion", True, True, 0.30)
    # the decision names the windows and data both were compared on, and what the champion had been evaluated on
    assert d.reason == (
        "metric.backtest_wape 0.25 < champion v1's 0.3 (re-evaluated on the same windows of the same data: "
        "backtest:W:data=40-series; the champion's own evaluation was on backtest:W:data=24-series)"
    )
    tags = MlflowClient().get_model_version(NAME, "1").tags
    assert tags["metric.backtest_wape"] == "0.1"  # its own evaluation is kept
    assert tags["registry.reevaluation"] == "metric.backtest_wape=0.3 on backtest:W:data=40-series (for v2)"


def test_a_re_evaluated_champion_that_is_still_better_keeps_champion(store):
    _register(store, 0.10, eval_key="backtest:W:data=24-series")
    d = _register(store, 0.25, eval_key="backtest:W:data=40-series", reevaluate=lambda mv: 0.20)
    assert (d.alias, d.compared, d.previous_value) == ("challenger", True, 0.20)
    assert _aliases() == {"champion": 1, "challenger": 2}


def test_same_eval_key_needs_no_re_evaluation(store):
    _register(store, 0.20)

    def never(mv):
        raise AssertionError("re-evaluated although the evaluation is the same")

    d = _register(store, 0.15, reevaluate=never)
    assert (d.alias, d.reevaluated) == ("champion", False)
    assert d.reason == "metric.backtest_wape 0.15 < champion v1's 0.2 (both evaluated on backtest:A)"


def test_a_champion_that_cannot_be_re_evaluated_is_not_compared(store):
    _register(store, 0.10, eval_key="backtest:W:data=24-series")

    def cannot(mv):
        raise NotComparableError("champion v1 forecasts 7 steps at W: not comparable")

    d = _register(store, 0.05, eval_key="backtest:W:data=40-series", reevaluate=cannot)
    assert (d.alias, d.compared, d.reevaluated) == ("challenger", False, False)
    assert "not compared (champion v1 forecasts 7 steps at W: not comparable)" in d.reason


def test_register_refuses_an_empty_eval_key(store):
    with pytest.raises(ValueError, match="eval_key must name the evaluation"):
        _register(store, 0.2, eval_key=" ")


# ------------------------------------------------------------------------------------------ promote
def test_promote_moves_the_alias_by_hand_and_reports_both_metrics(store):
    _register(store, 0.20, metrics={"backtest_rmspe": 0.30})
    _register(store, 0.25, metrics={"backtest_rmspe": 0.28})
    c = promote(NAME, "challenger")
    assert (c.old_version, c.new_version, c.same_evaluation) == (1, 2, True)
    assert c.old_metrics == {"metric.backtest_wape": 0.20, "metric.backtest_rmspe": 0.30}
    assert c.new_metrics == {"metric.backtest_wape": 0.25, "metric.backtest_rmspe": 0.28}
    assert _aliases() == {"champion": 2}
    assert "demand@champion: v1 -> v2" in str(c) and "metric.backtest_wape: 0.2 -> 0.25" in str(c)


def test_promote_by_version_number_to_another_alias(store):
    _register(store, 0.20)
    _register(store, 0.15)
    c = promote(NAME, 1, to_alias="challenger")
    assert (c.old_version, c.new_version) == (None, 1)
    assert _aliases() == {"champion": 2, "challenger": 1}


def test_promote_an_unknown_version_or_alias_is_refused(store):
    _register(store, 0.20)
    with pytest.raises(ModelNotFoundError, match="has no version 7"):
        promote(NAME, 7)
    with pytest.raises(ModelNotFoundError, match="has no alias 'staging'; its aliases are \\['champion'\\]"):
        promote(NAME, "staging")


# ------------------------------------------------------------------------------------------ resolve
def test_resolve_pins_alias_version_and_latest_uris(store):
    _register(store, 0.20)
    _register(store, 0.25)
    champ = resolve(f"models:/{NAME}@champion")
    assert (champ.uri, champ.version, champ.aliases, champ.run_id) == (
        f"models:/{NAME}/1",
        1,
        ("champion",),
        store["run_id"],
    )
    assert champ.metrics == {"metric.backtest_wape": 0.20}
    assert resolve(f"models:/{NAME}/2").aliases == ("challenger",)
    assert resolve(f"models:/{NAME}/latest").version == 2


def test_resolve_runs_uri(store):
    res = resolve(f"runs:/{store['run_id']}/model")
    assert (res.name, res.version, res.run_id) == (None, None, store["run_id"])


def test_resolved_uri_loads_the_registered_model(store):
    _register(store, 0.20)
    model = mlflow.pyfunc.load_model(resolve(f"models:/{NAME}@champion").uri)
    assert model.predict(pd.DataFrame({"x": [1.0, 2.0]}))["x"].tolist() == [2.0, 3.0]


def test_resolve_refuses_unknown_models_aliases_and_uri_forms(store):
    with pytest.raises(ModelNotFoundError, match="No registered model 'nope'"):
        resolve("models:/nope@champion")
    _register(store, 0.20)
    with pytest.raises(ModelNotFoundError, match="has no alias 'challenger'"):
        resolve(f"models:/{NAME}@challenger")
    with pytest.raises(ValueError, match="Unsupported model URI 's3://bucket/model'"):
        resolve("s3://bucket/model")
    with pytest.raises(ModelNotFoundError, match="No run 'deadbeef'"):
        resolve("runs:/deadbeef/model")


def test_metric_tag_names():
    assert registry.metric_tag("backtest_wape") == "metric.backtest_wape"
    assert registry.metric_tag("metric.auprc") == "metric.auprc"


def test_resolved_model_label_names_version_and_aliases_or_the_uri():
    registered = ResolvedModel("models:/demand/3", "demand", 3, "r1", "s", aliases=("champion", "prod"))
    assert registered.label == "demand v3 @champion @prod"
    assert ResolvedModel("runs:/r1/model", None, None, "r1", "s").label == "runs:/r1/model"


def test_registered_name_appends_the_kind_once():
    assert registry.registered_name("shop", "anomaly") == "shop-anomaly"
    assert registry.registered_name("shop-anomaly", "anomaly") == "shop-anomaly"
    assert registry.registered_name("shop", "forecast") == "shop-forecast"
    assert registry.registered_name("shop-anomaly", "forecast") == "shop-anomaly-forecast"


def test_registered_name_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match=r"kind must be one of \['forecast', 'anomaly'\]. Got 'forecasts'"):
        registry.registered_name("shop", "forecasts")
