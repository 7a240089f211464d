"""The one settings object, read from environment variables.

Every stage declares these variables in `.chalice/config.json`; locally they point at 127.0.0.1,
on AWS they come from the `infra/` parameters. Nothing else in the code asks "am I local?".
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


# Local development servers of the console (Vite's dev server and its preview), allowed by default.
DEV_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:4173", "http://127.0.0.1:4173")


def _origins(value: str) -> frozenset[str]:
    # An origin has no path: a trailing slash pasted from a browser's address bar is dropped.
    return frozenset(o.strip().rstrip("/") for o in value.split(",") if o.strip())


@dataclass(frozen=True)
class Settings:
    environment: str
    service: str
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    # Either the password itself (local runs, tests) or the id of a Secrets Manager secret holding
    # {"password": ...} (deployed functions): credentials never live in config.json.
    db_password: str | None
    db_secret_id: str | None
    redis_url: str
    kafka_bootstrap: str
    events_topic: str
    logs_topic: str
    jobs_queue_name: str
    jobs_dlq_name: str
    pushgateway_url: str
    max_body_bytes: int
    # Rate limiter: how long a warm container trusts its cached limiter config, and which limiters
    # deny (rather than admit) requests while Redis is unreachable.
    ratelimit_config_ttl_seconds: float
    ratelimit_fail_closed: frozenset[str]
    # How long a rate-limit decision polls for Redis's reply before blocking (0: block at once).
    ratelimit_spin_us: int
    # Event pipeline (issue 5): where malformed records go, how long a handled event is remembered
    # (replays within it change nothing), and the per-cluster scale cool-down.
    events_dlq_topic: str
    event_dedup_ttl_seconds: int
    scale_cooldown_seconds: int
    # Observability (issue 7): aggregated metrics on/off (off only for the overhead bench), log lines
    # also produced to Kafka, and Loki's push API when configured.
    metrics_enabled: bool = True
    logs_to_kafka: bool = False
    loki_url: str | None = None
    # How long the log store keeps lines (by the line's own timestamp); log_retention deletes older ones.
    log_retention_days: int = 7
    # Origins whose pages may call the API from a browser (issue 12, `chalicelib.cors`): the comma-separated
    # CG_CORS_ALLOWED_ORIGINS, or by default the console's own origin (CG_CONSOLE_ORIGIN, its S3 website URL)
    # plus the usual local development servers. `*` is allowed but never combined with credentials.
    cors_allowed_origins: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            environment=_env("CG_ENVIRONMENT", "local"),
            service=_env("CG_SERVICE", "clustergenie"),
            db_host=_env("CG_DB_HOST", "127.0.0.1"),
            db_port=int(_env("CG_DB_PORT", "3306")),
            db_name=_env("CG_DB_NAME", "clustergenie"),
            db_user=_env("CG_DB_USER", "clustergenie"),
            db_password=os.environ.get("CG_DB_PASSWORD"),
            db_secret_id=os.environ.get("CG_DB_SECRET_ID") or None,
            redis_url=_env("CG_REDIS_URL", "redis://127.0.0.1:6379/0"),
            kafka_bootstrap=_env("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
            events_topic=_env("CG_EVENTS_TOPIC", "cluster-events"),
            logs_topic=_env("CG_LOGS_TOPIC", "logs.clustergenie"),
            jobs_queue_name=_env("CG_JOBS_QUEUE", "clustergenie-jobs"),
            jobs_dlq_name=_env("CG_JOBS_DLQ", "clustergenie-jobs-dlq"),
            pushgateway_url=_env("CG_PUSHGATEWAY_URL", "http://127.0.0.1:9091"),
            max_body_bytes=int(_env("CG_MAX_BODY_BYTES", "65536")),
            ratelimit_config_ttl_seconds=float(_env("CG_RATELIMIT_CONFIG_TTL", "5")),
            ratelimit_fail_closed=frozenset(
                n.strip() for n in _env("CG_RATELIMIT_FAIL_CLOSED", "").split(",") if n.strip()
            ),
            ratelimit_spin_us=int(_env("CG_RATELIMIT_SPIN_US", "200")),
            events_dlq_topic=_env("CG_EVENTS_DLQ_TOPIC", "cluster-events.dlq"),
            event_dedup_ttl_seconds=int(_env("CG_EVENT_DEDUP_TTL", str(7 * 24 * 3600))),
            scale_cooldown_seconds=int(_env("CG_SCALE_COOLDOWN", "300")),
            metrics_enabled=_env("CG_METRICS_ENABLED", "1").lower() not in ("0", "false", "no", "off"),
            logs_to_kafka=_env("CG_LOGS_TO_KAFKA", "0").lower() not in ("0", "false", "no", "off"),
            loki_url=os.environ.get("LOKI_URL") or None,
            log_retention_days=int(_env("CG_LOG_RETENTION_DAYS", "7")),
            cors_allowed_origins=_origins(_env("CG_CORS_ALLOWED_ORIGINS", ",".join(
                [*DEV_ORIGINS, os.environ.get("CG_CONSOLE_ORIGIN", "")]))),
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once per warm container."""
    return Settings.from_env()
