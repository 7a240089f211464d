"""Deploy the real app to LocalStack, idempotently (run from the repo root with the app's venv).

    .venv/bin/python infra/deploy_local.py

1. SQS: `clustergenie-jobs-dlq`, `clustergenie-jobs` (redrive to the DLQ after maxReceiveCount) and
   `clustergenie-event-handler-failures` (the bridge's on-failure destination).
2. Secrets Manager: `clustergenie/local/db` = {"password": $CG_DB_PASSWORD}; functions get the secret's id,
   never the password.
3. `chalice deploy --stage local` (state in .chalice/deployed/, gitignored).
4. What Chalice cannot express: ReportBatchItemFailures on job_worker's SQS mapping; the functions'
   environment pointed at this machine's ports.
5. Waits for the functions to be Active, writes $CG_STATE_DIR/stack.json and prints the API base URL.

Settings (environment; $CG_STATE_DIR/stack.env fills in what is missing): CG_LOCALSTACK_PORT (4566),
CG_DB_PASSWORD, CG_DB_HOST, CG_DB_PORT, CG_REDIS_URL, CG_KAFKA_BOOTSTRAP, CG_PUSHGATEWAY_URL,
CG_JOBS_VISIBILITY_TIMEOUT (30 s, at least job_worker's timeout), CG_JOBS_MAX_RECEIVE_COUNT (3),
CG_STATE_DIR (.local).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make devstack/ and chalicelib/ importable
STAGE = "local"
APP_NAME = "clustergenie"
REGION = "us-east-1"
SECRET_ID = f"{APP_NAME}/{STAGE}/db"
JOBS_QUEUE = "clustergenie-jobs"
JOBS_DLQ = "clustergenie-jobs-dlq"
EVENT_FAILURES_QUEUE = "clustergenie-event-handler-failures"
# Settings whose values depend on this machine and checkout (ports, the database name that `./dev` created
# and migrated): copied from the environment into every function. Without CG_DB_NAME here every checkout's
# deployed functions shared the stage's `clustergenie` database on a shared MariaDB.
PORT_SETTINGS = ("CG_DB_HOST", "CG_DB_PORT", "CG_DB_NAME", "CG_REDIS_URL", "CG_KAFKA_BOOTSTRAP", "CG_PUSHGATEWAY_URL",
                 "CG_CONSOLE_ORIGIN", "CG_CORS_ALLOWED_ORIGINS")
# The console's S3 website on LocalStack (issue 14), whose pages call the API: a CORS origin by default.
CONSOLE_BUCKET = "clustergenie-console"


def say(msg: str) -> None:
    print(f"[deploy] {msg}", flush=True)


def state_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("CG_STATE_DIR") or ROOT / ".local")


def load_environment() -> str:
    """Fill the environment from stack.env (written by ./dev) and LocalStack's dummies; returns the endpoint."""
    from devstack.config import load_stack_env

    load_stack_env(state_dir(), required=False)
    port = os.environ.get("CG_LOCALSTACK_PORT", "4566")
    endpoint = f"http://127.0.0.1:{port}"
    # Always this machine's LocalStack: a deploy script must never reach a real account by accident.
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ["AWS_ACCESS_KEY_ID"] = "test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("CG_CONSOLE_ORIGIN", f"http://{CONSOLE_BUCKET}.s3-website.localhost.localstack.cloud:{port}")
    return endpoint


def wait_for_localstack(endpoint: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=3) as response:
                health = json.load(response)
            services = health.get("services", {})
            if all(services.get(s) in ("available", "running") for s in ("lambda", "sqs", "apigateway", "iam")):
                return
            last = json.dumps(services)
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = str(exc)
        time.sleep(1)
    raise SystemExit(f"LocalStack is not answering at {endpoint} (set CG_LOCALSTACK_PORT?): {last}")


def clients():
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=REGION)
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=60)
    return {name: session.client(name, config=config) for name in ("sqs", "secretsmanager", "lambda", "apigateway")}


def ensure_queue(sqs, name: str, attributes: dict[str, str]) -> str:
    """Create the queue, or bring an existing one's attributes to `attributes`; returns its URL."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    changed = {k: v for k, v in attributes.items() if current.get(k) != v and not _same_json(current.get(k), v)}
    if changed:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
    return url


def _same_json(a: str | None, b: str) -> bool:
    try:
        return a is not None and json.loads(a) == json.loads(b)
    except ValueError:
        return False


def ensure_queues(sqs) -> dict[str, str]:
    visibility = os.environ.get("CG_JOBS_VISIBILITY_TIMEOUT", "30")
    max_receive = os.environ.get("CG_JOBS_MAX_RECEIVE_COUNT", "3")
    retention = str(14 * 24 * 3600)
    dlq_url = ensure_queue(sqs, JOBS_DLQ, {"MessageRetentionPeriod": retention})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    jobs_url = ensure_queue(
        sqs,
        JOBS_QUEUE,
        {
            "VisibilityTimeout": visibility,
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": int(max_receive)}),
        },
    )
    failures_url = ensure_queue(sqs, EVENT_FAILURES_QUEUE, {"MessageRetentionPeriod": retention})
    return {"jobs": jobs_url, "jobs_dlq": dlq_url, "event_handler_failures": failures_url}


def ensure_secret(secrets) -> None:
    password = os.environ.get("CG_DB_PASSWORD")
    if password is None:
        raise SystemExit("CG_DB_PASSWORD is not set (./dev writes it to $CG_STATE_DIR/stack.env)")
    value = json.dumps({"password": password})
    try:
        current = secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"]
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=SECRET_ID, SecretString=value, Description="ClusterGenie local database password")
        return
    if current != value:
        secrets.put_secret_value(SecretId=SECRET_ID, SecretString=value)


def deployed_file() -> pathlib.Path:
    return ROOT / ".chalice" / "deployed" / f"{STAGE}.json"


def deployed_resources() -> list[dict]:
    path = deployed_file()
    return json.loads(path.read_text())["resources"] if path.exists() else []


def drop_stale_deployment_state(lam, apigateway) -> None:
    """LocalStack forgets everything on restart; Chalice's record of the old deployment must go with it."""
    resources = deployed_resources()
    if not resources:
        return
    try:
        for resource in resources:
            if resource.get("resource_type") == "lambda_function":
                lam.get_function(FunctionName=resource["lambda_arn"])
            elif resource.get("resource_type") == "rest_api":
                apigateway.get_rest_api(restApiId=resource["rest_api_id"])
    except (lam.exceptions.ResourceNotFoundException, apigateway.exceptions.NotFoundException):
        stale = deployed_file().with_suffix(".json.stale")
        deployed_file().replace(stale)
        say(f"LocalStack no longer has the last deployment: starting fresh (old record kept as {stale.name})")


def chalice_deploy() -> None:
    chalice = shutil.which("chalice", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("chalice")
    if chalice is None:
        raise SystemExit("chalice is not installed in this venv (pip install -r requirements-dev.txt)")
    started = time.monotonic()
    subprocess.run([chalice, "deploy", "--stage", STAGE], cwd=ROOT, check=True, env=os.environ.copy())
    say(f"chalice deploy took {time.monotonic() - started:.1f}s")


def functions_by_name() -> dict[str, str]:
    """Chalice's logical function names (api_handler, job_worker, ...) -> deployed Lambda names."""
    out = {}
    for resource in deployed_resources():
        if resource.get("resource_type") == "lambda_function":
            out[resource["name"]] = resource["lambda_arn"].rsplit(":", 1)[-1]
    return out


def enable_partial_batch_failures(lam, function_name: str) -> None:
    """Chalice never sets FunctionResponseTypes; without it a returned batchItemFailures is ignored."""
    mappings = lam.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
    sqs_mappings = [m for m in mappings if ":sqs:" in m.get("EventSourceArn", "")]
    if not sqs_mappings:
        raise SystemExit(f"{function_name} has no SQS event source mapping after chalice deploy")
    for mapping in sqs_mappings:
        if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
            lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
            say(f"ReportBatchItemFailures enabled on {function_name}'s SQS mapping")


def wait_until_ready(lam, function_name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        config = lam.get_function_configuration(FunctionName=function_name)
        if config.get("State") == "Active" and config.get("LastUpdateStatus") in (None, "Successful"):
            return
        if config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed":
            raise SystemExit(f"{function_name} failed: {config.get('StateReason') or config.get('LastUpdateStatusReason')}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{function_name} is still {config.get('State')}/{config.get('LastUpdateStatus')}")
        time.sleep(0.5)


def point_environment_here(lam, function_name: str) -> None:
    """Ports are configurable locally: make the deployed settings match this machine's (no password)."""
    wait_until_ready(lam, function_name)
    config = lam.get_function_configuration(FunctionName=function_name)
    current = dict((config.get("Environment") or {}).get("Variables") or {})
    wanted = dict(current)
    for key in PORT_SETTINGS:
        if os.environ.get(key):
            wanted[key] = os.environ[key]
    wanted["CG_DB_SECRET_ID"] = SECRET_ID
    wanted.pop("CG_DB_PASSWORD", None)
    if wanted != current:
        lam.update_function_configuration(FunctionName=function_name, Environment={"Variables": wanted})
        wait_until_ready(lam, function_name)


def apply_gateway_responses(apigateway) -> None:
    """The GatewayResponses of infra/resources.json (`chalice deploy` has no place for them): API Gateway's own
    errors in the v1 envelope. Issue 19's CloudFormation deploy of the packaged template replaces this."""
    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    rest_api = next(r for r in deployed_resources() if r.get("resource_type") == "rest_api")
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::ApiGateway::GatewayResponse":
            props = {k: v for k, v in resource["Properties"].items() if k != "RestApiId"}
            apigateway.put_gateway_response(
                restApiId=rest_api["rest_api_id"], responseType=props["ResponseType"],
                **({"statusCode": props["StatusCode"]} if "StatusCode" in props else {}),
                responseTemplates=props["ResponseTemplates"])


def write_stack_json(endpoint: str, functions: dict[str, str], queues: dict[str, str]) -> dict:
    rest_api = next((r for r in deployed_resources() if r.get("resource_type") == "rest_api"), None)
    if rest_api is None:
        raise SystemExit("chalice deploy recorded no REST API")
    api_id = rest_api["rest_api_id"]
    stack = {
        "api_url": f"{endpoint}/_aws/execute-api/{api_id}/api",
        "rest_api_id": api_id,
        "endpoint_url": endpoint,
        "region": REGION,
        "stage": STAGE,
        "functions": {("api" if k == "api_handler" else k): v for k, v in functions.items()},
        "queues": queues,
        "db_secret_id": SECRET_ID,
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = state_dir() / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(stack, indent=2) + "\n")
    tmp.replace(path)
    return stack


def main() -> int:
    started = time.monotonic()
    endpoint = load_environment()
    wait_for_localstack(endpoint)
    aws = clients()
    queues = ensure_queues(aws["sqs"])
    say(f"queues ready: {', '.join(sorted(queues))}")
    ensure_secret(aws["secretsmanager"])
    say(f"secret {SECRET_ID} ready")
    drop_stale_deployment_state(aws["lambda"], aws["apigateway"])
    chalice_deploy()
    functions = functions_by_name()
    if "job_worker" not in functions:
        raise SystemExit(f"no job_worker among the deployed functions: {sorted(functions)}")
    enable_partial_batch_failures(aws["lambda"], functions["job_worker"])
    apply_gateway_responses(aws["apigateway"])
    for name in functions.values():
        point_environment_here(aws["lambda"], name)
    stack = write_stack_json(endpoint, functions, queues)
    say(f"deployed {len(functions)} functions in {time.monotonic() - started:.1f}s; stack.json written")
    print(stack["api_url"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
