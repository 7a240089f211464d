"""The domain vocabulary (allow-lists) and the response shapes of the v1 API.

Response models double as the OpenAPI schemas (`chalicelib.api.openapi`), so what the document
promises and what the routes return come from one definition.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Json, TypeAdapter, model_validator

# --- Allow-lists ---------------------------------------------------------------------------------------
# The original accepted any string; these are the regions and sizes the providers can actually place.
REGIONS: tuple[str, ...] = (
    "nyc1", "nyc3", "sfo2", "sfo3", "tor1", "ams3", "lon1", "fra1", "sgp1", "blr1", "syd1",
)
DROPLET_SIZES: tuple[str, ...] = (
    "s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb",
)
PROVIDERS: tuple[str, ...] = ("simulated", "digitalocean", "aws")
DEFAULT_REGION = "nyc3"
DEFAULT_SIZE = "s-1vcpu-1gb"
DEFAULT_IMAGE = "ubuntu-22-04-x64"
DEFAULT_PROVIDER = "simulated"

ClusterStatus = Literal["healthy", "warning", "critical"]
# Ours, beside the original's three: a deleted cluster whose machines are still being terminated.
ClusterState = Literal["healthy", "warning", "critical", "deleting"]
DropletStatus = Literal["provisioning", "active", "deleting", "deleted", "error"]
# The v1 contract's job types: the only ones a client may create (POST /jobs).
ClientJobType = Literal["provision", "scale", "diagnose", "monitor"]
# Plus the control plane's own jobs (issue 8): droplet migrations and deployment steps.
# Plus `terminate`: stopping a deleted droplet's machine (issue 12).
JobType = Literal["provision", "scale", "diagnose", "monitor", "migrate", "deploy", "terminate"]
JobStatus = Literal["queued", "processing", "completed", "failed"]
MetricType = Literal["cpu", "memory", "disk", "network"]
HealthStatus = Literal["healthy", "warning", "critical", "unknown"]

JOB_TYPES: tuple[str, ...] = ClientJobType.__args__  # type: ignore[attr-defined]
METRIC_TYPES: tuple[str, ...] = MetricType.__args__  # type: ignore[attr-defined]
METRIC_UNITS: dict[str, str] = {"cpu": "%", "memory": "%", "disk": "%", "network": "Mbps"}


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, as the API writes timestamps (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# Timezone-aware, so that pydantic-core prints it as ISO-8601 with a `Z`; a naive value is a bug
# (repositories select timestamps as UTC text, see `repositories.base.utc_text`) and is refused.
UtcDatetime = AwareDatetime


_ROWS_ADAPTERS: dict[type, TypeAdapter] = {}


class _Response(BaseModel):
    # Row columns the shape does not expose are dropped (in pydantic-core, no Python per row); the
    # published schema still promises no other keys.
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})

    @classmethod
    def from_row(cls, row: dict[str, Any]):
        """Build from a repository row, keeping only the fields this shape exposes."""
        return cls.model_validate(row)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> list:
        """`from_row` for a whole listing, in one pydantic-core call."""
        adapter = _ROWS_ADAPTERS.get(cls)
        if adapter is None:
            adapter = _ROWS_ADAPTERS[cls] = TypeAdapter(list[cls])
        return adapter.validate_python(rows)


# --- Resources -----------------------------------------------------------------------------------------
class Cluster(_Response):
    id: str
    name: str
    region: str
    droplets: list[str] = Field(description="ids of the cluster's droplets, derived from the droplets table")
    status: ClusterState
    last_checked: UtcDatetime = Field(description="the last health check; the creation time until the first")
    version: int = Field(description="optimistic-concurrency version; send it back in PUT to update safely")
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @model_validator(mode="before")
    @classmethod
    def _checked_at_creation(cls, value: Any) -> Any:
        # The original set last_checked when it created a cluster, and clients read it always.
        if isinstance(value, dict) and value.get("last_checked") is None and "created_at" in value:
            value = {**value, "last_checked": value["created_at"]}
        return value


class Droplet(_Response):
    id: str
    cluster_id: str | None
    name: str
    region: str
    provider: str
    size: str
    image: str
    status: DropletStatus
    ip_address: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class Job(_Response):
    id: str
    # The tenant of the job's cluster (issue 13): carried on its events, never on the v1 wire.
    tenant_id: str = Field("default", exclude=True)
    cluster_id: str
    type: JobType
    status: JobStatus
    trace_id: str
    progress: int = Field(ge=0, le=100)
    # JSON columns arrive as text and are parsed by pydantic-core.
    parameters: Json[dict[str, str]]
    result: Json[Any] | None = None
    error: str | None
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
    started_at: UtcDatetime | None
    completed_at: UtcDatetime | None


class Metric(_Response):
    id: int
    cluster_id: str
    type: MetricType
    value: float
    unit: str
    timestamp: UtcDatetime


# --- Envelopes (the v1 wire contract; jobs, droplets and metrics in chalicelib.models.wire) ------------------------------------------------------------------
class ClusterEnvelope(_Response):
    cluster: Cluster
    message: str


class ClusterList(_Response):
    clusters: list[Cluster]


class HealthReport(_Response):
    cluster_id: str
    status: HealthStatus
    issues: list[str]
    timestamp: UtcDatetime


class DiagnosisReport(_Response):
    cluster: Cluster
    insights: list[str]
    recommendations: list[str]


class MessageResponse(_Response):
    message: str


class Deletion(_Response):
    """A delete's answer: the original's message, plus the jobs that stop the deleted machines (if any)."""

    message: str
    job_id: str | None = Field(default=None, description="the `terminate` job of a droplet with a machine")
    job_ids: list[str] | None = Field(default=None, description="the `terminate` jobs of a cluster's machines")


class ErrorResponse(BaseModel):
    # Open to extra keys: the edge (rate limiter, error middleware) may add context next to `error`.
    error: str
    request_id: str | None = Field(default=None, description="present on 500s; quote it when reporting")
