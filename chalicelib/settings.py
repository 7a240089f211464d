"""The one settings object, read from environment variables and validated when first asked for.

Every stage declares these variables in `.chalice/config.json`; locally they point at 127.0.0.1,
on AWS they come from the `infra/` parameters. Nothing else in the code asks "am I local?". A missing
variable takes its default; an empty one counts as missing; a bad one stops the function at start
with a SettingsError naming the variable.

The model is a plain pydantic model fed from `os.environ` (`_environment`): pydantic-settings did the same for
these flat fields but cost every function's cold start about as much as importing boto3 (issue 16).
"""
from __future__ import annotations

import os
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.warm import PerContainer

Port = Annotated[int, Field(ge=1, le=65535)]
Positive = Annotated[int, Field(ge=1)]


class SettingsError(ValueError):
    """The environment does not describe a usable configuration."""


# Local development servers of the console (Vite's dev server and its preview), allowed by default.
DEV_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:4173", "http://127.0.0.1:4173")


def _origins(value: str) -> frozenset[str]:
    # An origin has no path: a trailing slash pasted from a browser's address bar is dropped.
    return frozenset(o.strip().rstrip("/") for o in value.split(",") if o.strip())


class Settings(BaseModel):
    """Each field is read from `CG_<FIELD NAME>`, or from its `validation_alias` when it has one."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    environment: str = "local"
    service: str = "clustergenie"
    db_host: str = "127.0.0.1"
    db_port: Port = 3306
    db_name: str = "clustergenie"
    db_user: str = "clustergenie"
    # Either the password itself (local runs, tests) or the id of a Secrets Manager secret holding
    # {"password": ...} (deployed functions): credentials never live in config.json.
    db_password: str | None = None
    db_secret_id: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis's password (issue 18), kept out of the URL: the password itself (local runs, tests) or the id of a
    # Secrets Manager secret holding {"password": ...} (deployed functions).
    redis_password: str | None = None
    redis_secret_id: str | None = None
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Every producer's batch compression (issue 16, sixth round; docs/decisions.md): lz4 stores and moves a
    # batch of log lines in a fifth of its bytes and one of events in a third, for little CPU. Consumers
    # decompress whatever they get.
    kafka_compression: Literal["lz4", "gzip", "none"] = "lz4"
    events_topic: str = "cluster-events"
    logs_topic: str = "logs.clustergenie"
    jobs_queue_name: str = Field("clustergenie-jobs", validation_alias="CG_JOBS_QUEUE")
    jobs_dlq_name: str = Field("clustergenie-jobs-dlq", validation_alias="CG_JOBS_DLQ")
    # Where the event handler's Kafka mapping parks batches it gave up on (depth on /metrics; `./dev replay events`).
    events_failure_queue_name: str = Field("clustergenie-event-failures", validation_alias="CG_EVENTS_FAILURE_QUEUE")
    pushgateway_url: str = "http://127.0.0.1:9091"
    # The Pushgateway's basic auth (issue 18): the password itself (local runs, tests) or the id of a Secrets
    # Manager secret holding {"username": ..., "password": ...} (the deployed metrics exporter).
    pushgateway_user: str = "clustergenie"
    pushgateway_password: str | None = None
    pushgateway_secret_id: str | None = None
    max_body_bytes: Positive = 65536
    # JSON bodies (issue 18): deepest nesting and most object keys a request body may have (a 400 past them).
    max_json_depth: Positive = 32
    max_json_keys: Positive = 1000
    # Rate limiter: how long a warm container trusts its cached limiter config, and which limiters
    # deny (rather than admit) requests while Redis is unreachable (comma-separated names).
    ratelimit_config_ttl_seconds: float = Field(5.0, ge=0, validation_alias="CG_RATELIMIT_CONFIG_TTL")
    ratelimit_fail_closed: frozenset[str] = frozenset()
    # Event pipeline (issue 5): where malformed records go, how long a handled event is remembered
    # (replays within it change nothing), and the scale cool-down of a cluster without policies.
    events_dlq_topic: str = "cluster-events.dlq"
    # Trusted events (issue 18, chalicelib/event_signing.py): the HMAC keys, as the id of a Secrets Manager
    # secret (deployed functions) or the key document itself (local runs, tests).
    event_signing_secret_id: str | None = None
    event_signing_keys: str | None = None
    event_dedup_ttl_seconds: Positive = Field(7 * 24 * 3600, validation_alias="CG_EVENT_DEDUP_TTL")
    scale_cooldown_seconds: int = Field(300, ge=0, validation_alias="CG_SCALE_COOLDOWN")
    # Observability (issue 7): aggregated metrics on/off (off only for the overhead bench), log lines
    # also produced to Kafka, and Loki's push API when configured.
    metrics_enabled: bool = True
    logs_to_kafka: bool = False
    loki_url: str | None = Field(None, validation_alias="LOKI_URL")
    # How long the log store keeps lines (by the line's own timestamp); log_retention deletes older ones.
    log_retention_days: Positive = 7
    # Origins whose pages may call the API from a browser (issue 12, `chalicelib.cors`): the comma-separated
    # CG_CORS_ALLOWED_ORIGINS, or by default the console's own origin (CG_CONSOLE_ORIGIN, its S3 website URL)
    # plus the usual local development servers. `*` is allowed but never combined with credentials.
    cors_allowed_origins: frozenset[str] = frozenset()
    console_origin: str = ""
    # The most job_worker instances SQS runs at once (the mapping's ScalingConfig.MaximumConcurrency in
    # infra/resources.json): the original's worker_count.
    job_worker_concurrency: Positive = 10
    # Identity and access (issue 13, `chalicelib.auth`). On by default on every stage; off is refused
    # unless the environment is `local`. A warm container trusts a verified credential for
    # `auth_cache_ttl` seconds, so a revoked key stops working within that time.
    auth_enabled: bool = True
    # The tenant whose admins administer what every tenant shares (rate limits, providers, observability).
    auth_platform_tenant: str = "default"
    auth_cache_ttl_seconds: float = Field(5.0, ge=0, le=300, validation_alias="CG_AUTH_CACHE_TTL")
    # Bearer tokens (JWT) from an identity provider: verified against a JWKS document or a PEM public key
    # (file paths), the issuer and the audience; tenant and role are read from the named claims.
    auth_jwt_jwks_file: str | None = None
    auth_jwt_public_key_file: str | None = None
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None
    auth_jwt_algorithms: frozenset[str] = frozenset({"RS256", "ES256"})
    auth_jwt_tenant_claim: str = "tenant"
    auth_jwt_role_claim: str = "role"

    @property
    def kafka_compression_type(self) -> str | None:
        """`kafka_compression` as kafka-python's producer `compression_type` (None: uncompressed)."""
        return None if self.kafka_compression == "none" else self.kafka_compression

    @field_validator("ratelimit_fail_closed", "auth_jwt_algorithms", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return frozenset(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else value

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: Any) -> Any:
        return _origins(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_origins(self) -> "Settings":
        # No explicit list: the console's own origin plus the local development servers.
        if not self.cors_allowed_origins:
            object.__setattr__(self, "cors_allowed_origins", _origins(",".join([*DEV_ORIGINS, self.console_origin])))
        if not self.auth_enabled and self.environment != "local":
            raise ValueError(f"CG_AUTH_ENABLED: authentication may be off only on the local stage, "
                             f"not on {self.environment!r}")
        return self


def _variable(loc: str) -> str:
    """The environment variable behind an error's location (a field name, or already its alias)."""
    if loc not in Settings.model_fields:
        return loc
    alias = Settings.model_fields[loc].validation_alias
    return alias if isinstance(alias, str) else f"CG_{loc.upper()}"


def _environment() -> dict[str, str]:
    """Each field's variable that is set and not empty (an empty one counts as missing), keyed as the model reads
    it: the field's alias, else its name. Values stay strings; the model parses them (lists: the validators)."""
    values = {}
    for name, field in Settings.model_fields.items():
        key = field.validation_alias if isinstance(field.validation_alias, str) else name
        value = os.environ.get(_variable(name))
        if value:
            values[key] = value
    return values


def load_settings() -> Settings:
    """Settings from the environment; SettingsError naming each bad variable."""
    try:
        return Settings.model_validate(_environment())
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{_variable(str(e['loc'][0])) if e['loc'] else 'settings'}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise SettingsError(f"invalid configuration: {problems}") from None


_settings: PerContainer[Settings] = PerContainer(load_settings)


def get_settings() -> Settings:
    """Settings for this process, read once per warm container."""
    return _settings.get()


def reset_settings() -> None:
    """Read the environment again on next use (tests that change it)."""
    _settings.set(None)
