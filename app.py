"""ClusterGenie: the table of contents of the API and the functions.

Each function's logic lives in `chalicelib/`; this module only wires routes and triggers to it.
Handler modules are imported by the function that needs them, so one function's cold start does not
pay for another's dependencies.
"""
from chalice import Chalice, ConvertToMiddleware

from chalicelib.auth.middleware import register_authentication
from chalicelib.cors import register_cors
from chalicelib.http import register_error_handling
from chalicelib.idempotency import register_idempotency
from chalicelib.logs.context import register_log_context
from chalicelib.metrics.middleware import register_metrics
from chalicelib.observability import logger
from chalicelib.ratelimit import register_rate_limiting
from chalicelib.settings import get_settings

app = Chalice(app_name="clustergenie", configure_logs=False)
app.experimental_feature_flags.update({"BLUEPRINTS"})
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
register_log_context(app)  # function, request_id (+ trace/job/cluster ids) on every line, after the clear above
register_cors(app)  # outermost HTTP middleware: CORS headers and the request id on every response, errors included
register_metrics(app)  # outside error handling: records the status the client gets; flushes every function
register_error_handling(app)
register_authentication(app)  # inside CORS and error handling (401/403/503 carry both), before rate limiting
register_rate_limiting(app)  # inside error handling, so 429s get the v1 envelope; scoped on the principal
register_idempotency(app)  # innermost: Idempotency-Key on creates (issue 18), replays counted by the limiter

# --- REST API (function `api`, behind API Gateway), one blueprint per resource ----------------------
from chalicelib.api.clusters import bp as clusters_bp  # noqa: E402
from chalicelib.api.diagnosis import bp as diagnosis_bp  # noqa: E402
from chalicelib.api.droplets import bp as droplets_bp  # noqa: E402
from chalicelib.api.health import bp as health_bp  # noqa: E402
from chalicelib.api.jobs import bp as jobs_bp  # noqa: E402
from chalicelib.api.metrics import bp as metrics_bp  # noqa: E402
from chalicelib.api.observability import bp as observability_bp  # noqa: E402
from chalicelib.api.openapi import bp as openapi_bp  # noqa: E402
from chalicelib.api.hello import bp as hello_bp  # noqa: E402 - control plane (issue 8)
from chalicelib.api.scheduling import bp as scheduling_bp  # noqa: E402 - control plane (issue 8)
from chalicelib.api.billing import bp as billing_bp  # noqa: E402 - control plane (issue 8)
from chalicelib.api.autoscaling import bp as autoscaling_bp  # noqa: E402 - control plane (issue 8)
from chalicelib.api.deployments import bp as deployments_bp  # noqa: E402 - control plane (issue 8)
from chalicelib.api.prometheus import bp as prometheus_bp  # noqa: E402
from chalicelib.api.job_logs import bp as job_logs_bp  # noqa: E402
from chalicelib.api.job_events import bp as job_events_bp  # noqa: E402
from chalicelib.api.identity import bp as identity_bp  # noqa: E402 - identity and access (issue 13)
from chalicelib.api.quotas import bp as quotas_bp  # noqa: E402 - issue 18

app.register_blueprint(clusters_bp, url_prefix="/api/v1")
app.register_blueprint(droplets_bp, url_prefix="/api/v1")
app.register_blueprint(jobs_bp, url_prefix="/api/v1")
app.register_blueprint(metrics_bp, url_prefix="/api/v1")
app.register_blueprint(health_bp, url_prefix="/api/v1")
app.register_blueprint(diagnosis_bp, url_prefix="/api/v1")
app.register_blueprint(observability_bp, url_prefix="/api/v1")
app.register_blueprint(openapi_bp, url_prefix="/api/v1")
app.register_blueprint(hello_bp, url_prefix="/api/v1")
app.register_blueprint(scheduling_bp, url_prefix="/api/v1")
app.register_blueprint(billing_bp, url_prefix="/api/v1")
app.register_blueprint(autoscaling_bp, url_prefix="/api/v1")
app.register_blueprint(deployments_bp, url_prefix="/api/v1")
app.register_blueprint(prometheus_bp)  # GET /metrics, outside /api/v1
app.register_blueprint(job_logs_bp, url_prefix="/api/v1")  # GET /api/v1/jobs/{job_id}/logs
app.register_blueprint(job_events_bp, url_prefix="/api/v1")  # GET /api/v1/jobs/{job_id}/event-state
app.register_blueprint(identity_bp, url_prefix="/api/v1")  # /api/v1/auth/keys, /auth/whoami, /audit
app.register_blueprint(quotas_bp, url_prefix="/api/v1")  # GET/PUT /api/v1/quotas (issue 18)

from chalicelib.api.edge_routes import register_edge_routes  # noqa: E402

register_edge_routes(app)  # last: OPTIONS preflights, 405s and 404 catch-alls derived from the routes above


# --- SQS job queue -> job_worker -----------------------------------------------------------------------
@app.on_sqs_message(queue=get_settings().jobs_queue_name, batch_size=10, name="job_worker")
def job_worker(event):
    from chalicelib.functions.job_worker import handle_batch

    return handle_batch(event.to_dict(), event.context)


# --- Kafka cluster-events -> event_handler (MSK event source on AWS, the bridge locally) ---------------
@app.lambda_function(name="event_handler")
def event_handler(event, context):
    from chalicelib.functions.event_handler import handle_kafka_batch

    return handle_kafka_batch(event, context)


# --- EventBridge schedule -> metrics_exporter -----------------------------------------------------------
@app.schedule("rate(1 minute)", name="metrics_exporter")
def metrics_exporter(event):
    from chalicelib.functions.metrics_exporter import export

    return export()


# --- EventBridge schedule -> job_sweeper (stuck or dead-lettered jobs -> failed) ------------------------
@app.schedule("rate(1 minute)", name="job_sweeper")
def job_sweeper(event):
    from chalicelib.functions.job_sweeper import sweep

    return sweep()


# --- Kafka logs.clustergenie -> log_consumer (MSK event source on AWS, the bridge locally) -------------
@app.lambda_function(name="log_consumer")
def log_consumer(event, context):
    from chalicelib.functions.log_consumer import handle_kafka_batch

    return handle_kafka_batch(event, context)


# --- EventBridge schedule -> autoscaler (enabled policies -> scale jobs) -------------------------------
@app.schedule("rate(1 minute)", name="autoscaler")
def autoscaler(event):
    from chalicelib.functions.autoscaler import run

    return run()


# --- EventBridge schedule -> log_retention (log_lines older than the retention period -> deleted) -------
@app.schedule("rate(1 hour)", name="log_retention")
def log_retention(event):
    from chalicelib.functions.log_retention import run

    return run()
