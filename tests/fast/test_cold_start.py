"""Cold start (issue 16): importing app.py loads no heavy library, and each function, once its handler has
looked up its implementation, has loaded only what it uses.

Each check runs in a fresh interpreter (a clean `sys.modules`): this process has long since imported
everything. No timings are asserted here; `bench/bench_cold_start.py` measures them.
"""
from __future__ import annotations

import inspect
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Libraries no function needs just to be declared: each loads on the first invocation that uses it.
HEAVY = ("pydantic", "pydantic_settings", "redis", "hiredis", "pymysql", "boto3", "botocore", "jwt", "cryptography",
         "prometheus_client", "kafka", "aws_lambda_powertools")
# The API's resource modules (the route table's implementations) and the model modules behind them.
ROUTE_MODULES = ("chalicelib.api.clusters", "chalicelib.api.droplets", "chalicelib.api.jobs",
                 "chalicelib.api.metrics", "chalicelib.api.openapi", "chalicelib.api.identity",
                 "chalicelib.api.scheduling", "chalicelib.api.autoscaling", "chalicelib.api.observability")
REQUEST_MODELS = ("chalicelib.models.requests", "chalicelib.models.control_plane", "chalicelib.models.identity")
AUTH = ("jwt", "chalicelib.auth.authenticator", "chalicelib.auth.tokens")
# What a function's clients would load but no function uses (chalicelib/lazy_imports.py defers them): redis-py's
# asyncio client, pymysql's RSA password exchange (cryptography), Powertools' parser models (its batch types);
# Powertools idempotency's DynamoDB layer (boto3) is BOTO3 below.
DEFERRED = ("redis.asyncio.client", "redis.asyncio.connection", "cryptography.hazmat.primitives",
            "cryptography.hazmat.backends", "cryptography.x509", "aws_lambda_powertools.utilities.parser")
# boto3 and what it loads (s3transfer, botocore's session and loaders): only SQS, EC2 and Secrets Manager use it.
BOTO3 = ("boto3", "s3transfer", "botocore.session", "botocore.client", "botocore.loaders")
# A function's clients, imported as its first invocation imports them (the database, Redis, the logger).
CLIENTS = "import chalicelib.db, chalicelib.redis_client, chalicelib.observability, chalicelib.metrics"

# The module each non-HTTP handler in app.py imports on invocation, and what that function must not load.
FUNCTIONS = {
    # The worker's idempotency (Powertools, Redis layer) must not bring boto3 back through the DynamoDB layer.
    "job_worker": ("chalicelib.functions.job_worker",
                   (*ROUTE_MODULES, *REQUEST_MODELS, *AUTH, *DEFERRED, *BOTO3, "prometheus_client",
                    "chalicelib.event_pipeline")),
    "event_handler": ("chalicelib.functions.event_handler",
                      (*ROUTE_MODULES, *REQUEST_MODELS, *AUTH, *DEFERRED, *BOTO3, "prometheus_client",
                       "chalicelib.services.job_runner")),
    "metrics_exporter": ("chalicelib.functions.metrics_exporter",
                         (*ROUTE_MODULES, *REQUEST_MODELS, *AUTH, *DEFERRED, *BOTO3, "kafka",
                          "chalicelib.event_pipeline")),
    # The sweeper reads the dead-letter queue (SQS): boto3 is its own.
    "job_sweeper": ("chalicelib.functions.job_sweeper",
                    (*ROUTE_MODULES, *REQUEST_MODELS, *AUTH, *DEFERRED, "prometheus_client",
                     "chalicelib.event_pipeline")),
    "log_consumer": ("chalicelib.functions.log_consumer",
                     (*ROUTE_MODULES, *REQUEST_MODELS, *AUTH, *DEFERRED, *BOTO3, "prometheus_client",
                      "chalicelib.event_pipeline")),
    # The autoscaler evaluates policies, which are control-plane models: it may build those, not the rest.
    "autoscaler": ("chalicelib.functions.autoscaler",
                   (*ROUTE_MODULES, "chalicelib.models.identity", *AUTH, *DEFERRED, *BOTO3, "prometheus_client",
                    "chalicelib.event_pipeline")),
    "log_retention": ("chalicelib.functions.log_retention",
                      (*ROUTE_MODULES, *REQUEST_MODELS, *AUTH, *DEFERRED, *BOTO3, "prometheus_client",
                       "chalicelib.event_pipeline")),
}
# The API, with every resource module and its middleware's dependencies loaded, runs no consumer code.
API_FORBIDDEN = ("chalicelib.functions.event_handler", "chalicelib.functions.log_consumer",
                 "chalicelib.functions.metrics_exporter", "chalicelib.event_pipeline", "chalicelib.functions.job_worker",
                 *DEFERRED, *BOTO3)


def loaded_after(code: str) -> set[str]:
    """The module names in `sys.modules` of a fresh interpreter after running `code` in the repository root."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def offending(loaded: set[str], forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden packages (or any of their submodules) that were loaded."""
    return sorted(name for name in set(forbidden)
                  if name in loaded or any(module.startswith(name + ".") for module in loaded))


def test_importing_app_loads_no_heavy_library_no_route_module_and_no_model():
    loaded = loaded_after("import app")
    declared = {m for m in loaded if m.startswith("chalicelib.api.")} - {
        "chalicelib.api.routing", "chalicelib.api.edge_routes", "chalicelib.api.access"}
    assert offending(loaded, HEAVY) == []
    assert declared == set()  # no resource module: each loads on its route's first call
    assert offending(loaded, ("chalicelib.models", "chalicelib.services", "chalicelib.repositories",
                              "chalicelib.functions.job_worker", "chalicelib.settings", "chalicelib.observability")) == []


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_function_loads_only_what_it_uses(function):
    module, forbidden = FUNCTIONS[function]
    loaded = loaded_after(f"import app\n{CLIENTS}\nimport {module}")  # the middleware loads the clients first
    assert module in loaded
    assert offending(loaded, forbidden) == []


def test_the_api_with_every_route_loaded_runs_no_consumer_code():
    loaded = loaded_after("import app\nfrom chalicelib.api.routing import load_all_resources\nload_all_resources()\n"
                          "import chalicelib.auth.authenticator, chalicelib.auth.audit, chalicelib.ratelimit.manager\n"
                          + CLIENTS)
    assert "chalicelib.api.clusters" in loaded and "chalicelib.api.openapi" in loaded
    assert offending(loaded, API_FORBIDDEN) == []


def test_the_api_loads_pyjwt_only_for_a_bearer_token():
    """API keys (and the local stage's authentication off) never import PyJWT and the cryptography it loads."""
    loaded = loaded_after("import app\nimport chalicelib.auth.authenticator, chalicelib.auth.middleware\n" + CLIENTS)
    assert offending(loaded, ("jwt", *DEFERRED)) == []
    loaded = loaded_after("import app\nfrom chalicelib.auth.tokens import verify_token\n"
                          "try:\n    verify_token('a.b.c')\nexcept Exception:\n    pass")
    assert offending(loaded, ("jwt",)) == ["jwt"]


def test_the_table_above_names_each_handlers_implementation():
    """Each non-HTTP function of app.py appears above with the module its handler imports."""
    import app

    for name in FUNCTIONS:
        handler = getattr(app, name).func  # Chalice's EventSourceHandler; a pure Lambda is wrapped once more
        handler = getattr(handler, "_original_func", handler)
        imported = re.findall(r"from (chalicelib\.functions\.\w+) import", inspect.getsource(handler))
        assert imported == [FUNCTIONS[name][0]], name
    declared = {f.name for f in app.app.pure_lambda_functions} | {source.name for source in app.app.event_sources}
    assert declared == set(FUNCTIONS)


def test_the_check_flags_a_forbidden_module():
    """The checker itself: a module imported on purpose is reported, as is a submodule of a forbidden package."""
    loaded = loaded_after("import app\nimport pydantic\nimport chalicelib.models.requests")
    assert offending(loaded, HEAVY) == ["pydantic"]
    assert offending(loaded, REQUEST_MODELS) == ["chalicelib.models.requests"]
    assert offending({"redis.asyncio.client"}, ("redis",)) == ["redis"]


def test_the_declared_queue_is_the_settings_queue():
    import app
    from chalicelib.settings import get_settings

    assert app.JOBS_QUEUE == get_settings().jobs_queue_name
