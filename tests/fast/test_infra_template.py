"""The AWS wiring (infra/resources.json merged into Chalice's SAM template) must pass cfn-lint."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(scope="module")
def sam_template(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)  # packaging is offline; nothing may point it at LocalStack
    result = subprocess.run(
        [str(BIN / "chalice"), "package", "--stage", "dev", "--merge-template", "infra/resources.json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "sam.json"


def test_packaged_template_passes_cfn_lint(sam_template):
    result = subprocess.run([str(BIN / "cfn-lint"), str(sam_template)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_wires_the_triggers(sam_template):
    resources = json.loads(sam_template.read_text())["Resources"]
    queue = resources["JobsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    sqs_event = resources["JobWorker"]["Properties"]["Events"]["JobWorkerSqsEventSource"]["Properties"]
    assert sqs_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs_event["Queue"]["Fn::Sub"].endswith(":clustergenie-jobs")
    msk = resources["EventHandlerMskEventSource"]["Properties"]
    assert msk["FunctionName"] == {"Ref": "EventHandler"}
    assert msk["Topics"] == ["cluster-events"]
    assert msk["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["EventHandlerFailureQueue", "Arn"]}
    schedule = resources["MetricsExporter"]["Properties"]["Events"]["MetricsExporterEvent"]
    assert schedule == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}


def test_settings_come_from_parameters(sam_template):
    template = json.loads(sam_template.read_text())
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CG_PUSHGATEWAY_URL"] == {"Ref": "PushgatewayUrl"}
    assert variables["CG_DB_SECRET_ID"] == {"Ref": "DbSecretArn"}
    for name in ("PushgatewayUrl", "DbHost", "DbPort", "DbName", "DbUser", "DbSecretArn", "RedisUrl",
                 "KafkaBootstrap", "MskClusterArn"):
        assert name in template["Parameters"]
    assert "CG_DB_PASSWORD" not in json.dumps(template)
