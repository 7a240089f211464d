"""GET /api/v1/jobs/{job_id}/logs: one job's log lines from every function, in time order."""
from __future__ import annotations

import json

from chalice import Response

from chalicelib.api.openapi import Operation, document
from chalicelib.api.routing import current_request
from chalicelib.errors import NotFoundError
from chalicelib.http import JSON_HEADERS, caller_id
from chalicelib.logs.redaction import for_viewer
from chalicelib.repositories import JobRepository
from chalicelib.repositories.log_lines import MAX_LINES, LogStore

store = LogStore()

document(Operation("GET", "/api/v1/jobs/{job_id}/logs", "A job's log lines from the API, the worker and the event "
                   "handler, oldest first (at most 1000)", "jobs", None))


def get_job_logs(job_id: str):
    lines = store.for_job(job_id, MAX_LINES + 1)
    if not lines and not JobRepository().exists(job_id):
        raise NotFoundError("Job not found")
    truncated = len(lines) > MAX_LINES
    viewer = caller_id(current_request())
    for line in lines[:MAX_LINES]:
        try:
            line["line"] = json.loads(line["line"])
        except ValueError:
            pass
    shown = [for_viewer(line, viewer) for line in lines[:MAX_LINES]]  # no ARNs, no other callers' ids
    body = {"job_id": job_id, "lines": shown, "count": min(len(lines), MAX_LINES), "truncated": truncated}
    return Response(body=body, headers=JSON_HEADERS)
