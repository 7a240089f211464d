"""Deploy the app as ONE CloudFormation stack, from the template that goes to AWS.

    package  `chalice package --merge-template infra/resources.json` (SAM template + deployment.zip)
    upload   the zip and the template to the stack's artifact bucket (the template is over CloudFormation's
             51,200-byte inline limit, so it always goes by S3), CodeUri pointed at the uploaded zip
    deploy   create_stack / update_stack with the parameters of this machine (from stack.env), then wait;
             a failure prints the stack's events with the first failing resource and its reason
    record   the stack's outputs -> $CG_STATE_DIR/stack.json, and the MSK bridge's mappings generated from
             the template's own Kafka event source mappings (which LocalStack cannot create: EnableMsk=false)

The same steps run on AWS with the AWS CLI (infra/README.md); only the parameters differ. Everything here
talks to the LocalStack of this checkout (`AWS_ENDPOINT_URL`, dummy credentials), never to an account.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from devstack.config import ROOT, StackConfig
from devstack.process import StackError

MERGE_TEMPLATE = ROOT / "infra" / "resources.json"
PACKAGE_STAGE = "dev"  # the stage packaged for LocalStack; AWS packages dev or prod the same way
# The functions' roles (logical names in logs) and their logical ids in the template.
FUNCTIONS = {"api": "APIHandler", "job_worker": "JobWorker", "event_handler": "EventHandler",
             "log_consumer": "LogConsumer", "metrics_exporter": "MetricsExporter", "job_sweeper": "JobSweeper",
             "autoscaler": "Autoscaler", "log_retention": "LogRetention"}
SCHEDULED = ("metrics_exporter", "job_sweeper", "autoscaler", "log_retention")
QUEUES = {"jobs": "JobsQueue", "jobs_dlq": "JobsDeadLetterQueue", "event_handler_failures": "EventHandlerFailureQueue"}
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
FAILED_END = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
              "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_FAILED"}
# Local settings of the bridge that the template's mappings do not carry (the managed poller's own pace).
# The batching window and the pollers are the template's (MaximumBatchingWindowInSeconds, ProvisionedPollerConfig).
BRIDGE_LOCAL = {"retry_backoff_seconds": 1, "retry_backoff_max_seconds": 30}


def say(msg: str) -> None:
    print(f"[deploy] {msg}", flush=True)


@dataclass(frozen=True)
class Package:
    template: dict[str, Any]
    zip_path: pathlib.Path


def package(out_dir: pathlib.Path, python: pathlib.Path) -> Package:
    """`chalice package` of the app with infra/resources.json merged in (offline: no AWS call)."""
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    env.pop("AWS_ENDPOINT_URL", None)
    chalice = python.parent / "chalice"
    result = subprocess.run([str(chalice), "package", "--stage", PACKAGE_STAGE, "--merge-template",
                             str(MERGE_TEMPLATE), str(out_dir)], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"chalice package failed:\n{result.stdout}{result.stderr}")
    return Package(json.loads((out_dir / "sam.json").read_text()), out_dir / "deployment.zip")


def parameters(cfg: StackConfig, secret_arn: str, signing_arn: str = "", pushgateway_arn: str = "",
               redis_arn: str = "") -> dict[str, str]:
    """The template's parameters for this machine: what differs from AWS, from stack.env's values."""
    env = cfg.app_env()
    return {
        "EnvironmentName": "local",
        "DbHost": env["CG_DB_HOST"], "DbPort": env["CG_DB_PORT"], "DbName": env["CG_DB_NAME"],
        "DbUser": env["CG_DB_USER"], "DbSecretArn": secret_arn, "RedisUrl": env["CG_REDIS_URL"],
        "EventSigningSecretArn": signing_arn,
        "KafkaBootstrap": env["CG_KAFKA_BOOTSTRAP"], "PushgatewayUrl": env["CG_PUSHGATEWAY_URL"],
        "PushgatewaySecretArn": pushgateway_arn, "RedisSecretArn": redis_arn,
        # LocalStack's free edition refuses Kafka event source mappings: the MSK bridge plays them.
        "EnableMsk": "false",
        # Short locally, so a failed job is redelivered in seconds (AWS: 150 s, 6x the worker's timeout).
        "JobsVisibilityTimeout": os.environ.get("CG_JOBS_VISIBILITY_TIMEOUT", "30"),
        "JobsMaxReceiveCount": os.environ.get("CG_JOBS_MAX_RECEIVE_COUNT", "3"),
        "ConsoleWebsiteDomain": f"s3-website.localhost:{cfg.localstack_port}",
        # On unless CG_AUTH_ENABLED=false is exported for `./dev up` (local only: the app refuses it elsewhere).
        "AuthEnabled": cfg.auth_enabled,
    }


def clients(cfg: StackConfig) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    # Always this checkout's LocalStack with its documented dummy credentials: never a real account.
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=120)
    return {name: session.client(name, endpoint_url=cfg.endpoint_url, config=config)
            for name in ("cloudformation", "s3", "secretsmanager")}


def ensure_secret(secrets, name: str, password: str | None = None, *, value: str | None = None) -> str:
    """The DB secret the functions read at cold start (on AWS it pre-exists too: parameter DbSecretArn); with
    `value`, any other secret (the event signing keys, EventSigningSecretArn)."""
    value = value if value is not None else json.dumps({"password": password})
    try:
        current = secrets.get_secret_value(SecretId=name)
    except secrets.exceptions.ResourceNotFoundException:
        return secrets.create_secret(Name=name, SecretString=value, Description="ClusterGenie database password")["ARN"]
    if current["SecretString"] != value:
        secrets.put_secret_value(SecretId=name, SecretString=value)
    return current["ARN"]


def ensure_bucket(s3, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def upload(s3, bucket: str, pkg: Package, endpoint_url: str) -> str:
    """What `aws cloudformation package` does: the zip to S3, CodeUri pointed at it; returns the TemplateURL."""
    code = pkg.zip_path.read_bytes()
    code_key = f"code/{hashlib.sha256(code).hexdigest()}.zip"
    s3.put_object(Bucket=bucket, Key=code_key, Body=code)
    template = json.loads(json.dumps(pkg.template))
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{bucket}/{code_key}"
    body = json.dumps(template, separators=(",", ":")).encode()
    template_key = f"templates/{hashlib.sha256(body).hexdigest()}.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=body)
    return f"{endpoint_url}/{bucket}/{template_key}"


def stack_status(cfn, name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def failure_report(events: list[dict[str, Any]], name: str) -> str:
    """The stack's events, oldest first, led by the first resource that failed and why."""
    events = sorted(events, key=lambda e: e["Timestamp"])
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("_FAILED")
              and e.get("LogicalResourceId") != name and "cancelled" not in (e.get("ResourceStatusReason") or "")]
    lines = []
    if failed:
        first = failed[0]
        lines.append(f"first failing resource: {first['LogicalResourceId']} ({first.get('ResourceType')}) "
                     f"{first['ResourceStatus']}: {first.get('ResourceStatusReason') or 'no reason given'}")
    else:
        lines.append("no resource reported a failure")
    lines.append("stack events (oldest first):")
    for event in events[-40:]:
        reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
        lines.append(f"  {event['Timestamp']:%H:%M:%S} {event.get('LogicalResourceId', ''):<32} "
                     f"{event.get('ResourceStatus', ''):<20}{reason}")
    return "\n".join(lines)


def _events(cfn, name: str) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        page = cfn.describe_stack_events(StackName=name, **({"NextToken": token} if token else {}))
        events += page["StackEvents"]
        token = page.get("NextToken")
        if not token:
            return events


def wait_for_stack(cfn, name: str, timeout: float = 600) -> str:
    """Wait for the operation under way; on failure, report the events of this operation only."""
    started, since_wall = time.monotonic(), time.time()
    while True:
        status = stack_status(cfn, name)
        if status in DONE:
            return status
        if status is None or status in FAILED_END:
            events = _events(cfn, name) if status else []
            since = [e for e in events if e["Timestamp"].timestamp() >= since_wall - 5] or events
            raise StackError(f"stack {name} ended {status}\n{failure_report(since, name)}")
        if time.monotonic() - started > timeout:
            raise StackError(f"stack {name} still {status} after {timeout:.0f}s\n{failure_report(_events(cfn, name), name)}")
        time.sleep(1)


def deploy_stack(cfn, name: str, template_url: str, params: dict[str, str]) -> str:
    """Create the stack, or update it in place; returns what happened."""
    status = stack_status(cfn, name)
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"):
        say(f"stack {name} is {status} from a failed creation: deleting it first")
        delete_stack(cfn, name)
        status = None
    args = {"StackName": name, "TemplateURL": template_url,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]}
    if status is None:
        cfn.create_stack(**args)
        action = "created"
    else:
        try:
            cfn.update_stack(**args)
        except cfn.exceptions.ClientError as exc:
            if "No updates are to be performed" in str(exc):
                return "unchanged"
            raise
        action = "updated"
    try:
        wait_for_stack(cfn, name)
    except StackError as exc:
        raise StackError(str(exc).replace("ended", f"({action}) ended", 1)) from None
    return action


def delete_stack(cfn, name: str, timeout: float = 300) -> None:
    """Delete the stack; resources that fail to delete because they never existed (a failed creation,
    seen on LocalStack) are retained on a second try, as the console's "retain" does."""
    cfn.delete_stack(StackName=name)
    deadline = time.monotonic() + timeout
    retried = False
    while (status := stack_status(cfn, name)) not in (None, "DELETE_COMPLETE"):
        if status == "DELETE_FAILED" and not retried:
            try:
                resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
                stuck = [r["LogicalResourceId"] for r in resources if r["ResourceStatus"] == "DELETE_FAILED"]
                cfn.delete_stack(StackName=name, RetainResources=stuck)
            except cfn.exceptions.ClientError as exc:
                if "does not exist" not in str(exc):
                    raise
                return  # gone in the meantime
            retried = True
        elif status == "DELETE_FAILED" or time.monotonic() > deadline:
            raise StackError(f"stack {name} could not be deleted ({status})\n{failure_report(_events(cfn, name), name)}")
        time.sleep(1)


def outputs(cfn, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def bridge_mappings(template: dict[str, Any], out: dict[str, str], params: dict[str, str],
                    stack_name: str) -> list[dict[str, Any]]:
    """The MSK bridge's mappings, from the template's Kafka event source mappings and the stack's outputs."""
    defaults = {k: str(p["Default"]) for k, p in template.get("Parameters", {}).items() if "Default" in p}
    params = {**defaults, **params}
    mappings = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping" or "Topics" not in resource["Properties"]:
            continue
        props = resource["Properties"]
        function_id = props["FunctionName"]["Ref"]
        role = next(r for r, lid in FUNCTIONS.items() if lid == function_id)
        group = props["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]
        start = props.get("StartingPosition", "LATEST")
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        mapping = {
            "name": f"{props['Topics'][0]} -> {role}",
            "comment": f"Plays {logical_id} of the stack's template (EnableMsk=false locally).",
            "topic": props["Topics"][0],
            "function_name": out[f"{function_id}Name"],
            "consumer_group": _resolve(group, params, stack_name),
            "batch_size": props.get("BatchSize", 100),
            "starting_position": _resolve(start, params, stack_name),
            "maximum_retry_attempts": props.get("MaximumRetryAttempts", 3),
            # AWS's defaults: a 500 ms window; on-demand pollers (one locally: AWS adds more only after
            # minutes of lag), or up to MaximumPollers in provisioned mode (issue 16).
            "maximum_batching_window_seconds": props.get("MaximumBatchingWindowInSeconds", 0.5),
            "maximum_pollers": props.get("ProvisionedPollerConfig", {}).get("MaximumPollers", 1),
            **BRIDGE_LOCAL,
        }
        if destination:
            mapping["on_failure_queue"] = out[f"{destination['Fn::GetAtt'][0]}Name"]
        mappings.append(mapping)
    return mappings


def _resolve(value: Any, params: dict[str, str], stack_name: str) -> Any:
    """The few intrinsics the Kafka mappings use: Ref to a parameter, Fn::Sub of ${AWS::StackName}."""
    if isinstance(value, dict) and "Ref" in value:
        return params.get(value["Ref"], value)
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"].replace("${AWS::StackName}", stack_name)
    return value


def stack_record(cfg: StackConfig, name: str, out: dict[str, str], secret_arn: str,
                 mappings: list[dict[str, Any]]) -> dict[str, Any]:
    """stack.json: everything tests, the bridge and `./dev status` need, read from the stack's outputs."""
    api_id = out["RestAPIId"]
    return {
        "stack_name": name,
        # EndpointURL names AWS's host; LocalStack serves the same API under its own path.
        "api_url": f"{cfg.endpoint_url}/_aws/execute-api/{api_id}/api",
        "rest_api_id": api_id,
        "endpoint_url": cfg.endpoint_url,
        "region": "us-east-1",
        "stage": PACKAGE_STAGE,
        "functions": {role: out[f"{lid}Name"] for role, lid in FUNCTIONS.items()},
        "queues": {key: out[f"{lid}Url"] for key, lid in QUEUES.items()},
        "queue_names": {key: out[f"{lid}Name"] for key, lid in QUEUES.items()},
        "rules": {role: out[f"{FUNCTIONS[role]}RuleName"] for role in SCHEDULED},
        "console_bucket": out["ConsoleBucketName"],
        "console_url": out["ConsoleUrl"],
        "db_secret_id": secret_arn,
        "kafka_mappings": mappings,
        "outputs": out,
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def deploy(cfg: StackConfig, name: str, pkg: Package) -> dict[str, Any]:
    """Package already built: upload, create or update the stack `name`, return its record."""
    aws = clients(cfg)
    secret_arn = ensure_secret(aws["secretsmanager"], f"{name}/db", cfg.db_password())
    signing_arn = ensure_secret(aws["secretsmanager"], signing_secret_name(name), value=cfg.event_signing_keys())
    pushgateway_arn = ensure_secret(aws["secretsmanager"], pushgateway_secret_name(name), value=json.dumps(
        {"username": cfg.PUSHGATEWAY_USER, "password": cfg.pushgateway_password()}))
    redis_arn = ensure_secret(aws["secretsmanager"], redis_secret_name(name), value=json.dumps(
        {"password": cfg.redis_password()}))
    bucket = f"{name}-artifacts".lower()
    ensure_bucket(aws["s3"], bucket)
    started = time.monotonic()
    template_url = upload(aws["s3"], bucket, pkg, cfg.endpoint_url)
    params = parameters(cfg, secret_arn, signing_arn, pushgateway_arn, redis_arn)
    action = deploy_stack(aws["cloudformation"], name, template_url, params)
    say(f"stack {name} {action} ({time.monotonic() - started:.1f}s)")
    out = outputs(aws["cloudformation"], name)
    return stack_record(cfg, name, out, secret_arn, bridge_mappings(pkg.template, out, params, name))


def destroy(cfg: StackConfig, name: str) -> None:
    """Delete the stack (its console bucket emptied first, as CloudFormation deletes only empty buckets), then
    its artifact bucket and its secret (which live outside it, as on AWS)."""
    aws = clients(cfg)
    if stack_status(aws["cloudformation"], name) is not None:
        console = outputs(aws["cloudformation"], name).get("ConsoleBucketName")
        if console:
            _empty_bucket(aws["s3"], console)
        delete_stack(aws["cloudformation"], name)
    bucket = f"{name}-artifacts".lower()
    try:
        _empty_bucket(aws["s3"], bucket)
        aws["s3"].delete_bucket(Bucket=bucket)
    except aws["s3"].exceptions.NoSuchBucket:
        pass
    for secret in (f"{name}/db", signing_secret_name(name), pushgateway_secret_name(name), redis_secret_name(name)):
        try:
            aws["secretsmanager"].delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
        except aws["secretsmanager"].exceptions.ResourceNotFoundException:
            pass


def redis_secret_name(stack: str) -> str:
    """The Secrets Manager secret of Redis's password {"password": ...} (issue 18): every function reads it (each
    flushes its metrics to Redis)."""
    return f"{stack}/redis"


def pushgateway_secret_name(stack: str) -> str:
    """The Secrets Manager secret of the Pushgateway's basic auth {"username", "password"} (issue 18): read by
    the metrics exporter only."""
    return f"{stack}/pushgateway"


def signing_secret_name(stack: str) -> str:
    """The Secrets Manager secret of the stack's event signing keys (issue 18)."""
    return f"{stack}/event-signing"


def rotate_event_key(cfg: StackConfig) -> None:
    """A new current signing key, the old one kept as previous: written to the state dir's key file and to
    the deployed stack's secret. Warm functions re-read the secret within a minute and meanwhile still
    verify (both keys are accepted) and sign with the old key (accepted as previous): no downtime."""
    keys = cfg.rotate_event_key()
    cfg.write_stack_env()
    aws = clients(cfg)
    ensure_secret(aws["secretsmanager"], signing_secret_name(cfg.stack_name), value=keys)


def _empty_bucket(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


def consumer_group(stack: dict[str, Any], topic: str) -> str:
    """The consumer group the bridge (or, on AWS, the MSK mapping) reads `topic` with, from stack.json."""
    return next(m["consumer_group"] for m in stack["kafka_mappings"] if m["topic"] == topic)
