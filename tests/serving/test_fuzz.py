"""Property-based fuzzing of every operation with schemathesis, in process (ASGI), against the real models.

Each operation gets a bounded number of generated requests, positive and negative (values that fit its
OpenAPI schema and values that do not); the test fails on any 5xx and on any status the operation's OpenAPI
entry does not list. ``benchmarks/fuzz_api.py`` runs the same check with thousands of requests.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from serving.app import create_app  # noqa: E402
from serving.models import ModelHolder, ModelSource  # noqa: E402
from serving.settings import Settings  # noqa: E402

EXAMPLES_PER_OPERATION_AND_MODE = 12
AUTH = {"X-API-Key": "test-key"}


class _Served(ModelSource):
    def __init__(self, models):
        self.models = dict(models)

    def fetch(self, kind, current, refused=()):
        return self.models[kind]


@pytest.fixture
def fuzz_schema(served_models, tmp_path):
    """The app serving the session's real models on its own database; schemathesis runs its lifespan."""
    app_settings = Settings(
        profile="dev",
        api_keys="test-key",
        mlruns_dir=tmp_path,
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        gc_freeze_at_startup=False,
        events_refresh_interval_s=0,
    )
    holder = ModelHolder(_Served(served_models), kinds=("forecast", "anomaly"))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings, model_holder=holder))
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_operation_answers_5xx_or_an_undocumented_status(fuzz_schema, mode):
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) == 11  # every route of the API, GET /v1/monitoring included
    for operation in operations:
        try:
            _fuzz(operation, mode)
        except Unsatisfiable:  # no parameter and no body: nothing to make invalid
            assert mode is GenerationMode.NEGATIVE and not operation.body and not operation.path_parameters


def _fuzz(operation, mode) -> None:
    documented = {int(s) for s in operation.definition.raw["responses"] if s.isdigit()}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case):
        response = case.call(headers=AUTH, timeout=120)  # a slow answer on a busy machine is not a failure
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        assert response.status_code in documented, (
            f"{operation.label}: {response.status_code} is not documented ({sorted(documented)})",
            case.as_curl_command(),
            response.text[:500],
        )

    call()
