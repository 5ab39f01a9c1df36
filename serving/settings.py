"""The service's one Settings class, read from ``ORDERPULSE_*`` environment variables.

Every field is an environment variable named ``ORDERPULSE_<FIELD>`` (``ORDERPULSE_API_KEYS``,
``ORDERPULSE_MAX_BATCH_ORDERS`` ...); lists accept a comma list (``a,b``) or a JSON list (``["a","b"]``).

API keys are never kept in the clear: ``ORDERPULSE_API_KEYS`` holds SHA-256 hex digests
(``orderpulse keys hash`` prints one), optionally written ``sha256:<hex>``. Only the ``dev`` profile also takes
plain keys (hashed at load) and, when none is given, generates one for the run: ``generated_api_key`` holds
it so the runner can print it. Outside ``dev`` a missing or plain key is refused at startup.

Paths default to the repository's ``mlruns/`` folder (``ORDERPULSE_MLRUNS_DIR`` moves it): the audit trail
``mlruns/audit.db``, the model cache ``mlruns/serving-cache``, and the tracking store
``sqlite:///mlruns/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` says otherwise.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from serving.auth import generate_api_key, hash_api_key, normalise_key_hash

__all__ = ["Settings", "Profile", "ModelKind", "MODEL_KINDS", "REPO_ROOT"]

Profile = Literal["dev", "prod"]
ModelKind = Literal["forecast", "anomaly"]
MODEL_KINDS: tuple[str, ...] = ("forecast", "anomaly")
REPO_ROOT = Path(__file__).resolve().parents[1]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Settings(BaseSettings):
    """Service configuration; build one per app (tests pass their own, the runner reads the environment)."""

    model_config = SettingsConfigDict(env_prefix="ORDERPULSE_", extra="ignore", validate_default=True)

    profile: Profile = Field(
        "dev", description="dev: plain or generated API keys allowed; prod: hashed keys only"
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description="SHA-256 hex digests of the accepted API keys (plain keys only in profile dev)",
    )
    auth_exempt: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/health", "/ready", "/metrics"],
        description="route paths served without an API key (never a /v1 path)",
    )
    docs_public: bool | None = Field(
        None,
        description="serve /docs, /redoc and /openapi.json without an API key; default: true in profile dev, "
        "false in prod (then the pages are off and /openapi.json needs a key)",
    )
    mlruns_dir: Path = Field(
        REPO_ROOT / "mlruns", description="where the default audit db and model cache live"
    )
    audit_url: str = Field(
        "", description="SQLAlchemy URL of the audit trail; default sqlite:///<mlruns_dir>/audit.db"
    )
    audit_sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite durability: FULL survives power loss, NORMAL only process crashes"
    )
    model_name: str = Field(
        "orderpulse", description="registered models are <model_name>-forecast / -anomaly"
    )
    model_alias: str = Field("champion", description="registry alias the service serves")
    model_cache_dir: Path | None = Field(
        None, description="local copy of served models; default <mlruns_dir>/serving-cache"
    )
    tracking_uri: str = Field(
        default_factory=lambda: os.environ.get("MLFLOW_TRACKING_URI", ""),
        description="MLflow tracking/registry URI; default $MLFLOW_TRACKING_URI or sqlite:///<mlruns_dir>/mlflow.db",
    )
    registry_timeout_s: float = Field(10.0, gt=0, description="timeout of one registry request")
    registry_deadline_s: float = Field(
        5.0,
        gt=0,
        description="longest a start or reload waits for an HTTP(S) tracking server (all retries included) "
        "before it serves the cached models; covers a server that accepts connections but never answers",
    )
    registry_max_retries: int = Field(2, ge=0, le=10, description="retries of one registry request")
    max_batch_orders: int = Field(1000, ge=1, description="most orders one scoring request may carry")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest request body accepted (bytes)")
    reload_interval_s: float = Field(
        0.0, ge=0, description="poll the registry for a new champion every N s; 0 = off"
    )
    max_forecast_series: int = Field(100, ge=1, description="most series one forecast request may name")
    events_refresh_interval_s: float = Field(
        5.0,
        ge=0,
        description="poll the event tables every N s and rebuild the order history when they changed; 0 = off",
    )
    events_refresh_on_write: bool = Field(
        True, description="rebuild the order history before answering POST /v1/events (read-your-writes)"
    )
    keep_alive_s: float = Field(
        75.0,
        gt=0,
        description="idle keep-alive connections are closed after N s; keep it above the load balancer's idle "
        "timeout (60 s on AWS ALB), else the server closes connections the balancer is about to reuse",
    )
    worker_healthcheck_timeout_s: int = Field(
        60,
        ge=5,
        description="with several workers: how long the supervisor waits for a worker to answer its health ping "
        "before it kills and restarts it; it must cover a worker's start (imports) on a busy machine (uvicorn's "
        "default of 5 s restarted workers forever under load)",
    )
    gc_freeze_at_startup: bool = Field(
        True,
        description="gc.collect() then gc.freeze() once the models are loaded: no full-GC pauses over them later",
    )
    require_models: Annotated[list[ModelKind], NoDecode] = Field(
        default_factory=lambda: ["forecast", "anomaly"],
        description="model kinds that must be loaded for /ready",
    )

    monitoring_interval_s: float = Field(
        60.0,
        ge=0,
        description="refresh the monitoring gauges (and raise monitoring alerts) every N s; 0 = off",
    )
    monitoring_window_days: float = Field(
        7.0, gt=0, description="the periodic monitoring refresh judges the answers of the last N days"
    )
    monitoring_label_maturity_days: float = Field(
        14.0,
        ge=0,
        description="label maturity of anomaly models that did not log one (data.label_maturity_days)",
    )
    monitoring_late_actual_days: float = Field(
        2.0, gt=0, description="an actual received more than N days after its ds counts as late"
    )

    volume_freq: str | None = Field(
        None,
        description="grid of the volume series posted to /v1/actuals (e.g. 5min); unset: no volume verdicts",
    )
    volume_warmup: str = Field(
        "8d",
        description="learned from each volume series' first point before flagging: a duration, or auto "
        "(2 days below a daily grid, 28 days daily, 91 days weekly)",
    )
    volume_detector_uri: str | None = Field(
        None,
        description="continue from a detector logged by `orderpulse detect volume --log-mlflow` (runs:/...)",
    )
    volume_event_keys: str | None = Field(
        None,
        description="also judge order volume from /v1/events: 'total' or order fields, e.g. 'channel,region'",
    )
    alert_webhook_url: str | None = Field(
        None, description="POST each volume alert here (JSON, Idempotency-Key)"
    )
    alert_webhook_timeout_s: float = Field(5.0, gt=0, description="timeout of one webhook POST")
    alert_webhook_retry_s: float = Field(
        2.0,
        gt=0,
        description="first retry delay of a failed webhook POST (doubles each attempt, at most 1 h)",
    )
    _generated_api_key: str | None = PrivateAttr(None)

    # ------------------------------------------------------------------ public helpers
    @property
    def generated_api_key(self) -> str | None:
        """The key generated for this run (profile dev with no ORDERPULSE_API_KEYS), else None."""
        return self._generated_api_key

    @property
    def api_key_hashes(self) -> tuple[str, ...]:
        return tuple(self.api_keys)

    def to_env(self) -> dict[str, str]:
        """These settings as ``ORDERPULSE_*`` variables, so worker processes rebuild exactly the same Settings.

        Keys are exported as their hashes (a generated dev key included), never in the clear.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list):
                text = json.dumps([str(v) for v in value])
            elif value is None:
                continue
            else:
                text = str(value)
            env[f"ORDERPULSE_{name.upper()}"] = text
        return env

    # ------------------------------------------------------------------ validators
    @field_validator("api_keys", "auth_exempt", "require_models", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return _parse_list(value)

    @field_validator("auth_exempt")
    @classmethod
    def _exempt_paths_are_safe(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(
                    f"ORDERPULSE_AUTH_EXEMPT entries are route paths starting with '/', got {path!r}"
                )
            if path == "/v1" or path.startswith("/v1/"):
                raise ValueError(
                    f"ORDERPULSE_AUTH_EXEMPT may not exempt {path!r}: every /v1 route requires an API key; "
                    "remove it (the defaults are /health,/ready,/metrics)"
                )
        return value

    @field_validator("require_models")
    @classmethod
    def _unique_kinds(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("model_name")
    @classmethod
    def _model_name_is_simple(cls, value: str) -> str:
        if not _MODEL_NAME.match(value):
            raise ValueError(
                f"ORDERPULSE_MODEL_NAME must be letters, digits, '_', '.' or '-' (it becomes <name>-forecast in "
                f"the MLflow registry), got {value!r}"
            )
        return value

    @field_validator("volume_freq")
    @classmethod
    def _volume_freq_is_a_grid(cls, value: str | None) -> str | None:
        if value:
            from features.calendar import step_length

            step_length(value)  # raises naming the accepted steps
        return value or None

    @field_validator("volume_warmup")
    @classmethod
    def _volume_warmup_is_a_duration(cls, value: str) -> str:
        import pandas as pd

        if value.strip().lower() == "auto":
            return "auto"
        try:
            negative = pd.Timedelta(value) < pd.Timedelta(0)
        except ValueError:
            negative = None
        if negative is None or negative:
            raise ValueError(
                f"ORDERPULSE_VOLUME_WARMUP must be a duration >= 0 such as 8d or 12h, or auto, got {value!r}"
            )
        return value

    @field_validator("volume_event_keys")
    @classmethod
    def _event_keys_are_order_fields(cls, value: str | None) -> str | None:
        from serving.services.order_volume import parse_event_keys

        parse_event_keys(value)  # raises naming the accepted fields
        return value or None

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"ORDERPULSE_ALERT_WEBHOOK_URL must be an http(s) URL, got {value!r}")
        return value or None

    @model_validator(mode="after")
    def _derive_defaults_and_check_keys(self) -> Settings:
        mlruns = Path(self.mlruns_dir).expanduser()
        if self.docs_public is None:
            self.docs_public = self.profile == "dev"
        if not self.audit_url:
            self.audit_url = f"sqlite:///{mlruns / 'audit.db'}"
        if self.model_cache_dir is None:
            self.model_cache_dir = mlruns / "serving-cache"
        if not self.tracking_uri:
            self.tracking_uri = f"sqlite:///{mlruns / 'mlflow.db'}"
        self.api_keys = self._hashed_keys(self.api_keys)
        if not self.api_keys:
            if self.profile != "dev":
                raise ValueError(
                    f"no API key configured for profile {self.profile!r}: set ORDERPULSE_API_KEYS to a comma list "
                    "of SHA-256 hashes of your keys (generate a key and its hash with `orderpulse keys hash`; "
                    "only the hash goes into the environment)"
                )
            key = generate_api_key()
            self._generated_api_key = key
            self.api_keys = [hash_api_key(key)]
        return self

    def _hashed_keys(self, keys: list[str]) -> list[str]:
        hashes: list[str] = []
        for i, key in enumerate(keys):
            key = key.strip()
            if not key:
                continue
            digest = normalise_key_hash(key)
            if digest is None:
                if self.profile != "dev":
                    raise ValueError(
                        f"ORDERPULSE_API_KEYS entry #{i + 1} is a plain key, refused in profile {self.profile!r}: "
                        "store only SHA-256 hashes (64 hex characters, `orderpulse keys hash` prints one)"
                    )
                digest = hash_api_key(key)
            hashes.append(digest)
        return list(dict.fromkeys(hashes))


def _parse_list(value: Any) -> Any:
    """``'a,b'`` / ``'["a","b"]'`` / ``''`` / a list -> a list of stripped, non-empty strings."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"not a valid JSON list: {text!r} ({exc.msg}); use a JSON list or a comma list"
                ) from exc
        else:
            value = text.split(",")
    if isinstance(value, list | tuple):
        return [
            v.strip() if isinstance(v, str) else v
            for v in value
            if not (isinstance(v, str) and not v.strip())
        ]
    return value
