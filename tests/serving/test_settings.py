import hashlib
import json

import pytest
from pydantic import ValidationError

from serving.auth import hash_api_key
from serving.settings import Settings

SHA_ABC = hashlib.sha256(b"abc").hexdigest()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in (
        "ORDERPULSE_API_KEYS",
        "ORDERPULSE_PROFILE",
        "ORDERPULSE_AUTH_EXEMPT",
        "ORDERPULSE_REQUIRE_MODELS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORDERPULSE_MLRUNS_DIR", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_paths_default_under_mlruns_dir(tmp_path):
    s = Settings(api_keys="k")
    mlruns = tmp_path / "mlruns"
    assert s.audit_url == f"sqlite:///{mlruns / 'audit.db'}"
    assert s.model_cache_dir == mlruns / "serving-cache"
    assert s.tracking_uri == f"sqlite:///{mlruns / 'mlflow.db'}"


def test_tracking_uri_defaults_to_mlflow_tracking_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert Settings(api_keys="k").tracking_uri == "http://mlflow.internal:5000"


def test_documented_defaults():
    s = Settings(api_keys="k")
    assert (s.profile, s.model_name, s.model_alias) == ("dev", "orderpulse", "champion")
    assert (s.max_batch_orders, s.max_body_bytes, s.reload_interval_s) == (1000, 1_048_576, 0.0)
    assert s.auth_exempt == ["/health", "/ready", "/metrics"]
    assert s.require_models == ["forecast", "anomaly"]


def test_api_keys_from_env_comma_list_are_hashed_in_dev(monkeypatch):
    monkeypatch.setenv("ORDERPULSE_API_KEYS", "abc, second-key ,")
    assert Settings().api_keys == [SHA_ABC, hash_api_key("second-key")]


def test_api_keys_from_env_json_list_of_hashes_are_kept(monkeypatch):
    monkeypatch.setenv("ORDERPULSE_API_KEYS", json.dumps([SHA_ABC.upper(), "sha256:" + "0" * 64]))
    assert Settings(profile="prod").api_keys == [SHA_ABC, "0" * 64]


def test_prod_without_keys_is_refused_with_the_fix():
    with pytest.raises(ValidationError, match=r"ORDERPULSE_API_KEYS.*orderpulse keys hash"):
        Settings(profile="prod")


def test_prod_with_a_plain_key_is_refused():
    with pytest.raises(ValidationError, match=r"entry #2 is a plain key, refused in profile 'prod'"):
        Settings(profile="prod", api_keys=f"{SHA_ABC},plain-key")


def test_dev_without_keys_generates_one_that_is_accepted():
    s = Settings()
    assert s.generated_api_key is not None and s.generated_api_key.startswith("op_")
    assert s.api_keys == [hash_api_key(s.generated_api_key)]


def test_given_keys_mean_no_generated_key():
    assert Settings(api_keys="k").generated_api_key is None


def test_plain_keys_do_not_appear_in_repr():
    s = Settings(api_keys="super-secret")
    assert "super-secret" not in repr(s) and hash_api_key("super-secret") not in repr(s)


def test_exempting_a_v1_path_is_refused(monkeypatch):
    monkeypatch.setenv("ORDERPULSE_AUTH_EXEMPT", "/health,/v1/models")
    with pytest.raises(ValidationError, match=r"may not exempt '/v1/models'"):
        Settings(api_keys="k")


def test_auth_exempt_is_configurable(monkeypatch):
    monkeypatch.setenv("ORDERPULSE_AUTH_EXEMPT", "/health")
    assert Settings(api_keys="k").auth_exempt == ["/health"]


def test_require_models_accepts_a_comma_list_and_refuses_unknown_kinds(monkeypatch):
    monkeypatch.setenv("ORDERPULSE_REQUIRE_MODELS", "anomaly")
    assert Settings(api_keys="k").require_models == ["anomaly"]
    with pytest.raises(ValidationError, match="require_models"):
        Settings(api_keys="k", require_models="anomaly,weather")


def test_unsafe_limits_are_refused():
    with pytest.raises(ValidationError, match="max_batch_orders"):
        Settings(api_keys="k", max_batch_orders=0)
    with pytest.raises(ValidationError, match="reload_interval_s"):
        Settings(api_keys="k", reload_interval_s=-1)


def test_model_name_with_a_slash_is_refused():
    with pytest.raises(ValidationError, match=r"ORDERPULSE_MODEL_NAME.*got 'a/b'"):
        Settings(api_keys="k", model_name="a/b")


def test_to_env_rebuilds_the_same_settings_with_the_generated_key(monkeypatch):
    original = Settings(max_batch_orders=50, require_models=["anomaly"])
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    rebuilt = Settings()
    assert rebuilt.generated_api_key is None
    assert rebuilt.api_keys == original.api_keys == [hash_api_key(original.generated_api_key)]
    assert rebuilt.model_dump() == original.model_dump()


def test_volume_warmup_takes_a_duration_or_auto_and_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("ORDERPULSE_VOLUME_WARMUP", "AUTO")
    assert Settings().volume_warmup == "auto"
    monkeypatch.setenv("ORDERPULSE_VOLUME_WARMUP", "36h")
    assert Settings().volume_warmup == "36h"
    monkeypatch.setenv("ORDERPULSE_VOLUME_WARMUP", "soon")
    with pytest.raises(ValidationError, match="ORDERPULSE_VOLUME_WARMUP must be a duration"):
        Settings()
    monkeypatch.setenv("ORDERPULSE_VOLUME_WARMUP", "-1d")
    with pytest.raises(ValidationError, match="must be a duration >= 0 .*got '-1d'"):
        Settings()
