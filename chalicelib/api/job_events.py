"""GET /api/v1/jobs/{job_id}/event-state: the job as the event stream last described it (the event
handler's read model), next to the stored job (GET /jobs/{job_id}) and its log lines (.../logs)."""
from __future__ import annotations

from chalice import Response

from chalicelib.api.openapi import Operation, document
from chalicelib.errors import NotFoundError
from chalicelib.http import JSON_HEADERS

document(Operation("GET", "/api/v1/jobs/{job_id}/event-state", "The job's status and progress as its events last "
                   "described them (status, progress, last_event_type, last_event_at), kept 7 days", "jobs", None))


def get_job_event_state(job_id: str):
    from chalicelib.event_pipeline.job_models import job_event_state
    from chalicelib.redis_client import get_redis

    from chalicelib.repositories import JobRepository

    # The read model in Redis knows no tenants: the job must be one of the caller's (issue 13).
    state = job_event_state(get_redis(), job_id) if JobRepository().exists(job_id) else None
    if state is None:
        raise NotFoundError("No event about this job was handled")
    return Response(body=state, headers=JSON_HEADERS)
