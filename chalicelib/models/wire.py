"""The v1 wire shapes of jobs, droplets and metrics, as the original's clients read them (issue 12).

The domain models (`chalicelib.models.domain`) are what the services work with: job parameters and
results as objects, our own status words. These shapes turn them into what the original sent, field by
field (`shared/reference/api-v1-wire.md` §3): job `parameters` and `result` as JSON text, the original's
job status words, droplets with their nested `cluster`, metric ids as strings. Keys the original left out
when empty are left out (`ok()` drops None), never sent as null. Fields the original did not have are
added, never put in place of one of theirs.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, model_validator

from chalicelib.models.domain import Cluster, Droplet, DropletStatus, Job, JobType, Metric, UtcDatetime, _Response

# Our job states in the original's words: a job a worker is running is `running` (the console's "active"
# filter is running or pending); `queued` is the original's word too. `pending` is never produced here:
# a job is queued in the same request that creates it.
WIRE_JOB_STATUS = {"queued": "queued", "processing": "running", "completed": "completed", "failed": "failed"}
WireJobStatus = Literal["pending", "queued", "running", "completed", "failed"]


def json_text(value: Any) -> str | None:
    """The original's encoding of a JSON value held as text: compact, keys sorted; empty -> absent."""
    if value is None or value == {} or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class JobOut(_Response):
    id: str
    cluster_id: str
    type: JobType
    status: WireJobStatus
    created_at: UtcDatetime
    completed_at: UtcDatetime | None = None
    result: str | None = Field(default=None, description="JSON text of the job's result (the original's `result` was text)")
    error: str | None = None
    progress: int = Field(ge=0, le=100)
    trace_id: str | None = None
    parameters: str | None = Field(default=None, description="JSON text of the request's parameters, keys sorted")
    # Ours, in addition to the original's fields.
    started_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    version: int

    @model_validator(mode="before")
    @classmethod
    def _from_job(cls, value: Any) -> Any:
        if isinstance(value, Job):
            value = value.model_dump()
            value["status"] = WIRE_JOB_STATUS[value["status"]]
            value["parameters"] = json_text(value["parameters"])
            value["result"] = json_text(value["result"])
        return value


class DropletOut(_Response):
    id: str
    cluster_id: str | None = None
    cluster: Cluster | None = Field(default=None, description="the droplet's cluster (the console's droplet table reads it)")
    name: str
    region: str
    provider: str | None = None
    size: str
    image: str
    status: DropletStatus
    created_at: UtcDatetime
    ip_address: str | None = None
    updated_at: UtcDatetime

    @classmethod
    def of(cls, droplet: Droplet, clusters: dict[str, Cluster]) -> "DropletOut":
        return cls.model_validate({**droplet.model_dump(), "cluster": clusters.get(droplet.cluster_id or "")})


class MetricOut(_Response):
    id: str
    cluster_id: str
    type: str
    value: float
    timestamp: UtcDatetime
    unit: str

    @model_validator(mode="before")
    @classmethod
    def _from_metric(cls, value: Any) -> Any:
        if isinstance(value, Metric):
            value = {**value.model_dump(), "id": str(value.id)}
        return value


# --- Envelopes -----------------------------------------------------------------------------------------
class DropletEnvelope(_Response):
    droplet: DropletOut
    message: str
    job_id: str | None = Field(default=None, description="the job that provisions (POST) the droplet: poll it")


class DropletList(_Response):
    droplets: list[DropletOut]


class JobEnvelope(_Response):
    job: JobOut
    message: str


class JobPage(_Response):
    jobs: list[JobOut]
    page: int
    page_size: int
    total: int


class MetricPage(_Response):
    metrics: list[MetricOut]
    period: Literal["1h"] = Field(description="the original's constant; not a filter")
    page: int
    page_size: int
    total_count: int
