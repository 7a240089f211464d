"""Two stacks in one LocalStack: a second stack, deployed from the same template under another name, works
without touching the first (nothing in the template fixes a name), and is deleted cleanly."""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from devstack import deploy
from devstack.config import StackConfig
from devstack.services import http_get

pytestmark = pytest.mark.localstack


def website_get(url: str) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname.endswith(".localhost"), url
    request = urllib.request.Request(f"http://127.0.0.1:{parts.port}{parts.path}", headers={"Host": parts.netloc})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_second_stack_is_deployed_smoke_tested_and_deleted_beside_the_first(stack, aws, function_env, tmp_path):
    cfn = aws("cloudformation")
    first_before = cfn.describe_stacks(StackName=stack["stack_name"])["Stacks"][0]
    # The second stack uses the database the first one's functions use (the tests' own database is the fast
    # tier's, which the root conftest points this process at).
    cfg = dataclasses.replace(StackConfig.from_env(), db_name=function_env["CG_DB_NAME"])
    name = f"cg-second-{uuid.uuid4().hex[:8]}"
    pkg = deploy.package(tmp_path, pathlib.Path(sys.executable))
    try:
        second = deploy.deploy(cfg, name, pkg)
        for kind in ("functions", "queue_names", "rules"):
            assert set(second[kind].values()).isdisjoint(stack[kind].values()), kind
        assert second["console_bucket"] != stack["console_bucket"]
        assert second["rest_api_id"] != stack["rest_api_id"]

        status, body = http_get(f"{second['api_url']}/api/v1/clusters", timeout=60)
        assert status == 200, body[:500]
        assert "data" in json.loads(body) or isinstance(json.loads(body), (list, dict))
        mapping = aws("lambda").list_event_source_mappings(FunctionName=second["functions"]["job_worker"])
        [sqs_mapping] = mapping["EventSourceMappings"]
        assert sqs_mapping["EventSourceArn"].endswith(f":{second['queue_names']['jobs']}")
        assert (sqs_mapping["State"], sqs_mapping["FunctionResponseTypes"]) == ("Enabled", ["ReportBatchItemFailures"])
        # The console bucket serves a single-page app at the stack's ConsoleUrl: index.html, and index.html
        # again for a client-side route. (`*.localhost` resolves to 127.0.0.1 in browsers and curl, not in
        # Python's resolver, so the request goes to 127.0.0.1 with the URL's Host header.)
        index = b"<!doctype html><title>console smoke test</title>"
        aws("s3").put_object(Bucket=second["console_bucket"], Key="index.html", Body=index, ContentType="text/html")
        assert website_get(second["console_url"]) == (200, index)
        assert website_get(f"{second['console_url']}clusters/abc") == (404, index)  # S3's error document, 404
        config = aws("lambda").get_function_configuration(FunctionName=second["functions"]["job_worker"])
        variables = config["Environment"]["Variables"]
        assert (variables["CG_FUNCTION"], variables["CG_JOBS_QUEUE"]) == ("job_worker", second["queue_names"]["jobs"])
    finally:
        deploy.destroy(cfg, name)

    assert deploy.stack_status(cfn, name) is None
    first_after = cfn.describe_stacks(StackName=stack["stack_name"])["Stacks"][0]
    assert first_after["StackStatus"] == first_before["StackStatus"]
    assert first_after.get("LastUpdatedTime") == first_before.get("LastUpdatedTime")
    assert {o["OutputKey"]: o["OutputValue"] for o in first_after["Outputs"]} == stack["outputs"]
    status, _ = http_get(f"{stack['api_url']}/api/v1/clusters", timeout=60)
    assert status == 200
