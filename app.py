"""ClusterGenie: the table of contents of the API and the functions.

Each function's logic lives in `chalicelib/`; this module only wires routes and triggers to it.
Handler modules are imported by the function that needs them, so one function's cold start does not
pay for another's dependencies.
"""
import os

from chalicelib import lazy_imports

lazy_imports.install()  # first: redis-py's asyncio client, Powertools' DynamoDB layer, pymysql's cryptography on use

from chalice import Chalice  # noqa: E402 - after the deferral above

from chalicelib.api import routing
from chalicelib.api.edge_routes import register_edge_routes
from chalicelib.auth.middleware import register_authentication
from chalicelib.cors import register_cors
from chalicelib.http import register_error_handling
from chalicelib.idempotency import register_idempotency
from chalicelib.logs.context import register_log_context
from chalicelib.metrics.middleware import register_metrics
from chalicelib.ratelimit import register_rate_limiting

app = Chalice(app_name="clustergenie", configure_logs=False)
register_log_context(app)  # Powertools' per-invocation clear, then function, request_id (+ trace/job/cluster ids)
register_cors(app)  # outermost HTTP middleware: CORS headers and the request id on every response, errors included
register_metrics(app)  # outside error handling: records the status the client gets; flushes every function
register_error_handling(app)
register_authentication(app)  # inside CORS and error handling (401/403/503 carry both), before rate limiting
register_rate_limiting(app)  # inside error handling, so 429s get the v1 envelope; scoped on the principal
register_idempotency(app)  # innermost: Idempotency-Key on creates (issue 18), replays counted by the limiter

# --- REST API (function `api`, behind API Gateway): the route table -------------------------------------
# (path, methods, resource module under chalicelib/api/, view function). Chalice needs every route now; each
# resource module is imported on its route's first call (`chalicelib.api.routing`), so a cold start pays only
# for the resources it serves, and the non-HTTP functions below for none of them.
ROUTES = (
    ("/api/v1/clusters",                               ["POST"],        "clusters",      "create_cluster"),
    ("/api/v1/clusters",                               ["GET"],         "clusters",      "list_clusters"),
    ("/api/v1/clusters/{cluster_id}",                  ["GET"],         "clusters",      "get_cluster"),
    ("/api/v1/clusters/{cluster_id}",                  ["PUT"],         "clusters",      "update_cluster"),
    ("/api/v1/clusters/{cluster_id}",                  ["DELETE"],      "clusters",      "delete_cluster"),
    ("/api/v1/droplets",                               ["POST"],        "droplets",      "create_droplet"),
    ("/api/v1/droplets",                               ["GET"],         "droplets",      "list_droplets"),
    ("/api/v1/droplets/{droplet_id}",                  ["GET"],         "droplets",      "get_droplet"),
    ("/api/v1/droplets/{droplet_id}",                  ["DELETE"],      "droplets",      "delete_droplet"),
    ("/api/v1/jobs",                                   ["POST"],        "jobs",          "create_job"),
    ("/api/v1/jobs",                                   ["GET"],         "jobs",          "list_jobs"),
    ("/api/v1/jobs/{job_id}",                          ["GET"],         "jobs",          "get_job"),
    ("/api/v1/metrics",                                ["GET"],         "metrics",       "list_metrics"),
    ("/api/v1/health/{cluster_id}",                    ["GET"],         "health",        "cluster_health"),
    ("/api/v1/diagnosis/diagnose",                     ["POST"],        "diagnosis",     "diagnose_cluster"),
    ("/api/v1/observability/ratelimit",                ["GET"],         "observability", "ratelimit_status"),
    ("/api/v1/observability/ratelimit/config",         ["POST"],        "observability", "save_ratelimit_config"),
    ("/api/v1/observability/ratelimit/config",         ["GET"],         "observability", "get_ratelimit_config"),
    ("/api/v1/observability/ratelimit/config",         ["DELETE"],      "observability", "delete_ratelimit_config"),
    ("/api/v1/observability/ratelimit/config/list",    ["GET"],         "observability", "list_ratelimit_configs"),
    ("/api/v1/observability/workerpool",               ["GET"],         "observability", "workerpool_status"),
    ("/api/v1/openapi.json",                           ["GET"],         "openapi",       "get_openapi_document"),
    ("/api/v1/hello",                                  ["POST"],        "hello",         "hello"),
    ("/api/v1/providers",                              ["GET"],         "scheduling",    "list_providers"),
    ("/api/v1/providers",                              ["POST"],        "scheduling",    "put_provider"),
    ("/api/v1/providers/{name}",                       ["DELETE"],      "scheduling",    "delete_provider"),
    ("/api/v1/schedule",                               ["POST"],        "scheduling",    "schedule"),
    ("/api/v1/migrations",                             ["POST"],        "scheduling",    "migrate_droplet"),
    ("/api/v1/billing/cluster",                        ["GET"],         "billing",       "cluster_bill"),
    ("/api/v1/autoscaling/policies",                   ["POST"],        "autoscaling",   "create_policy"),
    ("/api/v1/autoscaling/policies",                   ["GET"],         "autoscaling",   "list_policies"),
    ("/api/v1/autoscaling/policies/{policy_id}",       ["GET"],         "autoscaling",   "get_policy"),
    ("/api/v1/autoscaling/policies/{policy_id}",       ["PUT"],         "autoscaling",   "update_policy"),
    ("/api/v1/autoscaling/policies/{policy_id}",       ["DELETE"],      "autoscaling",   "delete_policy"),
    ("/api/v1/autoscaling/evaluate",                   ["POST"],        "autoscaling",   "evaluate"),
    ("/api/v1/deployments/start",                      ["POST"],        "deployments",   "start_deployment"),
    ("/api/v1/deployments",                            ["GET"],         "deployments",   "list_deployments"),
    ("/api/v1/deployments/{deployment_id}",            ["GET"],         "deployments",   "get_deployment"),
    ("/api/v1/deployments/{deployment_id}/rollback",   ["POST"],        "deployments",   "rollback_deployment"),
    ("/metrics",                                       ["GET", "HEAD"], "prometheus",    "prometheus_metrics"),
    ("/api/v1/jobs/{job_id}/logs",                     ["GET"],         "job_logs",      "get_job_logs"),
    ("/api/v1/jobs/{job_id}/event-state",              ["GET"],         "job_events",    "get_job_event_state"),
    ("/api/v1/auth/whoami",                            ["GET"],         "identity",      "whoami"),
    ("/api/v1/auth/keys",                              ["POST"],        "identity",      "create_key"),
    ("/api/v1/auth/keys",                              ["GET"],         "identity",      "list_keys"),
    ("/api/v1/auth/keys/{key_id}",                     ["DELETE"],      "identity",      "revoke_key"),
    ("/api/v1/audit",                                  ["GET"],         "identity",      "list_audit"),
    ("/api/v1/quotas",                                 ["GET"],         "quotas",        "get_quotas"),
    ("/api/v1/quotas",                                 ["PUT"],         "quotas",        "put_quotas"),
)

routing.bind(app)
for path, methods, resource, view in ROUTES:
    app.route(path, methods=methods, name=view)(routing.deferred_view(resource, view))
register_edge_routes(app)  # last: OPTIONS preflights, 405s and 404 catch-alls derived from the routes above


# --- SQS job queue -> job_worker -----------------------------------------------------------------------
# The queue as `Settings.jobs_queue_name` names it (CG_JOBS_QUEUE, empty counts as unset), read here without
# loading the settings model at import; tests/fast/test_cold_start.py checks that the two agree.
JOBS_QUEUE = os.environ.get("CG_JOBS_QUEUE") or "clustergenie-jobs"


# Batches of up to 100 gathered for at most 1 s (AWS requires a batching window above 10 messages): a backlog
# goes out in tenfold fewer invocations, receives and deletes than with 10 (issue 16, docs/decisions.md).
@app.on_sqs_message(queue=JOBS_QUEUE, batch_size=100, maximum_batching_window_in_seconds=1, name="job_worker")
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
