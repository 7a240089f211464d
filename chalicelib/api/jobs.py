"""/api/v1/jobs (POST is rate limited by the `jobs_create` limiter, per caller)."""
from __future__ import annotations

from chalicelib.api.responses import created, ok
from chalicelib.api.routing import current_request
from chalicelib.http import caller_id, parse_body, parse_query, request_id
from chalicelib.models import CreateJobRequest, JobEnvelope, JobListQuery, JobPage
from chalicelib.services.jobs import JobService

service = JobService()


def create_job():
    request = current_request()
    body = parse_body(request, CreateJobRequest)
    job = service.submit(body.type, body.cluster_id, body.parameters, caller=caller_id(request),
                         correlation_id=request_id(request))
    return created(JobEnvelope(job=job, message="Job created successfully"))


def list_jobs():
    query = parse_query(current_request(), JobListQuery)
    jobs, total = service.list(query)
    return ok(JobPage(jobs=jobs, page=query.page, page_size=query.page_size, total=total))


def get_job(job_id: str):
    return ok(JobEnvelope(job=service.get(job_id), message="Job retrieved"))
