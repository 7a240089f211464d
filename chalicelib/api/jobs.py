"""/api/v1/jobs (POST is rate limited by the `jobs_create` limiter, per caller)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.responses import created, ok
from chalicelib.http import caller_id, parse_body, parse_query, request_id
from chalicelib.models import CreateJobRequest, JobEnvelope, JobListQuery, JobPage
from chalicelib.services.jobs import JobService

bp = Blueprint(__name__)
service = JobService()


@bp.route("/jobs", methods=["POST"])
def create_job():
    request = bp.current_request
    body = parse_body(request, CreateJobRequest)
    job = service.submit(body.type, body.cluster_id, body.parameters, caller=caller_id(request),
                         correlation_id=request_id(request))
    return created(JobEnvelope(job=job, message="Job created successfully"))


@bp.route("/jobs", methods=["GET"])
def list_jobs():
    query = parse_query(bp.current_request, JobListQuery)
    jobs, total = service.list(query)
    return ok(JobPage(jobs=jobs, page=query.page, page_size=query.page_size, total=total))


@bp.route("/jobs/{job_id}", methods=["GET"])
def get_job(job_id: str):
    return ok(JobEnvelope(job=service.get(job_id), message="Job retrieved"))
