"""The template `./dev up` deploys and AWS gets (infra/resources.json merged into Chalice's SAM template):
cfn-lint clean, the triggers wired, names never hard-coded, and each function's role least-privilege."""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import subprocess
import sys

import pytest

from devstack import deploy
from devstack.services import load_bridge_module

BIN = pathlib.Path(sys.executable).parent
GETATT = "Fn::GetAtt"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> deploy.Package:
    """The very packaging step `./dev up` runs."""
    return deploy.package(tmp_path_factory.mktemp("package"), pathlib.Path(sys.executable))


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return packaged.template


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def test_packaged_template_passes_cfn_lint(packaged):
    sam = packaged.zip_path.parent / "sam.json"
    result = subprocess.run([str(BIN / "cfn-lint"), str(sam)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqs_mapping_reports_partial_failures_on_the_stacks_queue(resources):
    sqs_event = resources["JobWorker"]["Properties"]["Events"]["JobWorkerSqsEventSource"]["Properties"]
    assert sqs_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs_event["Queue"] == {"Fn::Sub": "${JobsQueue.Arn}"}
    queue = resources["JobsQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {GETATT: ["JobsDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": {"Ref": "JobsMaxReceiveCount"}}


def test_no_name_is_fixed_in_the_template(resources, template):
    """Two stacks share an account and region: queues, buckets and functions get CloudFormation's names."""
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        for key in ("QueueName", "BucketName", "FunctionName", "RoleName", "Name"):
            assert not isinstance(props.get(key), str), f"{logical_id} fixes its {key}: {props[key]}"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CG_JOBS_QUEUE"] == {GETATT: ["JobsQueue", "QueueName"]}
    assert variables["CG_JOBS_DLQ"] == {GETATT: ["JobsDeadLetterQueue", "QueueName"]}


def test_kafka_mappings_are_conditional_on_msk(resources, template):
    assert template["Conditions"]["MskEnabled"] == {"Fn::Equals": [{"Ref": "EnableMsk"}, "true"]}
    kafka = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert set(kafka) == {"EventHandlerMskEventSource", "LogConsumerMskEventSource"}
    assert all(r["Condition"] == "MskEnabled" for r in kafka.values())
    events = kafka["EventHandlerMskEventSource"]["Properties"]
    assert (events["FunctionName"], events["Topics"]) == ({"Ref": "EventHandler"}, ["cluster-events"])
    assert events["DestinationConfig"]["OnFailure"]["Destination"] == {GETATT: ["EventHandlerFailureQueue", "Arn"]}
    logs = kafka["LogConsumerMskEventSource"]["Properties"]
    assert (logs["FunctionName"], logs["Topics"]) == ({"Ref": "LogConsumer"}, ["logs.clustergenie"])


def test_schedules_are_in_the_template(resources):
    schedules = {lid: ev["Properties"]["Schedule"] for lid, r in resources.items()
                 for ev in r.get("Properties", {}).get("Events", {}).values() if ev["Type"] == "Schedule"}
    assert schedules == {"MetricsExporter": "rate(1 minute)", "JobSweeper": "rate(1 minute)",
                         "Autoscaler": "rate(1 minute)", "LogRetention": "rate(1 hour)"}


def test_settings_come_from_parameters_and_no_stage_overrides_them(resources, template):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    wanted = {"CG_ENVIRONMENT": "EnvironmentName", "CG_DB_HOST": "DbHost", "CG_DB_PORT": "DbPort",
              "CG_DB_NAME": "DbName", "CG_DB_USER": "DbUser", "CG_DB_SECRET_ID": "DbSecretArn",
              "CG_EVENT_SIGNING_SECRET_ID": "EventSigningSecretArn",
              "CG_REDIS_URL": "RedisUrl", "CG_REDIS_SECRET_ID": "RedisSecretArn", "CG_KAFKA_BOOTSTRAP": "KafkaBootstrap",
              "CG_PUSHGATEWAY_URL": "PushgatewayUrl"}
    for variable, parameter in wanted.items():
        assert variables[variable] == {"Ref": parameter}
        assert parameter in template["Parameters"]
    for role, logical_id in deploy.FUNCTIONS.items():
        own = resources[logical_id]["Properties"]["Environment"]["Variables"]
        # A function-level value would win over Globals (SAM's rule): none may shadow a parameter.
        assert not set(own) & set(variables), f"{logical_id} overrides {set(own) & set(variables)}"
        assert own["CG_FUNCTION"] == role  # the logical name in log lines, whatever the deployed name
    assert "CG_DB_PASSWORD" not in json.dumps(template) and "CG_REDIS_PASSWORD" not in json.dumps(template)


# What each function's code calls, and nothing more (logs come from AWSLambdaBasicExecutionRole).
MSK = {"kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers", "kafka-cluster:Connect",
       "kafka-cluster:DescribeClusterDynamicConfiguration", "kafka-cluster:DescribeTopic", "kafka-cluster:ReadData",
       "kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup", "ec2:CreateNetworkInterface",
       "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
       "ec2:DescribeSecurityGroups"}
# The database password and Redis's (issue 18): every function reads both (each flushes its metrics to Redis).
SECRET = {("secretsmanager:GetSecretValue", "Ref:DbSecretArn"), ("secretsmanager:GetSecretValue", "Ref:RedisSecretArn")}
# The event signing keys (issue 18): only the functions that produce or verify cluster events read them.
SIGNING = {("secretsmanager:GetSecretValue", "Ref:EventSigningSecretArn")}
# The Pushgateway's basic auth (issue 18): only the function that pushes reads it.
PUSHGATEWAY = {("secretsmanager:GetSecretValue", "Ref:PushgatewaySecretArn")}
ENQUEUE = {("sqs:GetQueueUrl", "JobsQueue"), ("sqs:SendMessage", "JobsQueue")}
DEPTHS = {(a, q) for a in ("sqs:GetQueueUrl", "sqs:GetQueueAttributes")
          for q in ("JobsQueue", "JobsDeadLetterQueue", "EventHandlerFailureQueue")}
EXPECTED_GRANTS = {
    "APIHandler": SECRET | SIGNING | ENQUEUE | DEPTHS,
    "JobWorker": SECRET | SIGNING
    | {(a, "JobsQueue") for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                  # records not started in time are made visible again (issue 16)
                                  "sqs:GetQueueUrl", "sqs:ChangeMessageVisibility")}
    | {(a, "*") for a in ("ec2:RunInstances", "ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:CreateTags")},
    "EventHandler": SECRET | SIGNING | ENQUEUE | {("sqs:SendMessage", "EventHandlerFailureQueue")},
    "LogConsumer": SECRET,
    "MetricsExporter": SECRET | PUSHGATEWAY | DEPTHS,
    "JobSweeper": SECRET | SIGNING | {(a, "JobsDeadLetterQueue") for a in ("sqs:GetQueueUrl", "sqs:ReceiveMessage",
                                                                 "sqs:DeleteMessage")},
    "Autoscaler": SECRET | SIGNING | ENQUEUE,
    "LogRetention": SECRET,
}


def _resource_name(resource) -> str:
    if resource == "*":
        return "*"
    if GETATT in resource:
        return resource[GETATT][0]
    return f"Ref:{resource['Ref']}"


def _grants(role: dict) -> tuple[set, set]:
    """(action, resource) pairs granted always, and actions granted only when MskEnabled."""
    always, msk_only = set(), set()
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                condition, statement, otherwise = statement["Fn::If"]
                assert condition == "MskEnabled" and otherwise == {"Ref": "AWS::NoValue"}
                msk_only |= set(statement["Action"])
                continue
            assert statement["Effect"] == "Allow"
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            always |= {(action, _resource_name(t)) for action in statement["Action"] for t in targets}
    return always, msk_only


def test_each_function_has_its_own_least_privilege_role(resources):
    roles = set()
    for logical_id, expected in EXPECTED_GRANTS.items():
        role_id = resources[logical_id]["Properties"]["Role"][GETATT][0]
        roles.add(role_id)
        role = resources[role_id]
        always, msk_only = _grants(role)
        assert always == expected, f"{logical_id}: extra {always - expected}, missing {expected - always}"
        assert msk_only == (MSK if logical_id in ("EventHandler", "LogConsumer") else set()), logical_id
        assert role["Properties"]["ManagedPolicyArns"] == [
            {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}]
    assert len(roles) == len(EXPECTED_GRANTS)
    assert not [k for k, r in resources.items() if r["Type"] == "AWS::IAM::Policy"], "no shared policy"


def test_the_pushgateway_secret_reaches_only_the_function_that_pushes(resources, template):
    """Issue 18: the Pushgateway's credentials come from Secrets Manager (never a plain variable holding the
    password), named only to the metrics exporter, and only its role may read the secret."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert "CG_PUSHGATEWAY_SECRET_ID" not in variables and "CG_PUSHGATEWAY_PASSWORD" not in json.dumps(template)
    readers = set()
    for logical_id in EXPECTED_GRANTS:
        own = resources[logical_id]["Properties"]["Environment"]["Variables"]
        role = resources[resources[logical_id]["Properties"]["Role"][GETATT][0]]
        if PUSHGATEWAY & _grants(role)[0]:
            readers.add(logical_id)
        if "CG_PUSHGATEWAY_SECRET_ID" in own:
            assert own["CG_PUSHGATEWAY_SECRET_ID"] == {"Ref": "PushgatewaySecretArn"}
            assert logical_id in readers, f"{logical_id} is told the secret but may not read it"
    assert readers == {"MetricsExporter"}
    assert "PushgatewaySecretArn" in template["Parameters"]


def test_console_bucket_hosts_a_single_page_app(resources, template):
    website = resources["ConsoleBucket"]["Properties"]["WebsiteConfiguration"]
    assert website == {"IndexDocument": "index.html", "ErrorDocument": "index.html"}
    statement = resources["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Action"]) for s in statement] == [("*", "s3:GetObject")]
    assert {"ConsoleBucketName", "ConsoleUrl"} <= set(template["Outputs"])


def test_outputs_name_every_function_queue_and_rule(template):
    outputs = set(template["Outputs"])
    assert {f"{lid}Name" for lid in deploy.FUNCTIONS.values()} <= outputs
    assert {f"{lid}{kind}" for lid in deploy.QUEUES.values() for kind in ("Url", "Name")} <= outputs
    assert {f"{deploy.FUNCTIONS[role]}RuleName" for role in deploy.SCHEDULED} <= outputs


def test_bridge_mappings_are_generated_from_the_templates_kafka_mappings(template):
    outputs = {"EventHandlerName": "stk-EventHandler-X", "LogConsumerName": "stk-LogConsumer-Y",
               "EventHandlerFailureQueueName": "stk-EventHandlerFailureQueue-Z"}
    mappings = deploy.bridge_mappings(template, outputs, {}, "stk")  # parameter defaults apply
    parsed = [load_bridge_module().Mapping.from_dict(m) for m in mappings]
    assert sorted((m.topic, m.function_name, m.consumer_group, m.batch_size, m.starting_position,
                   m.on_failure_queue) for m in parsed) == [
        ("cluster-events", "stk-EventHandler-X", "stk-event-handler", 500, "TRIM_HORIZON",
         "stk-EventHandlerFailureQueue-Z"),
        ("logs.clustergenie", "stk-LogConsumer-Y", "stk-log-consumer", 500, "LATEST", None),
    ]
    # The managed poller's pace is the template's too (issue 16): its batching window and, in provisioned
    # mode, its MaximumPollers (on-demand: one poller locally).
    resources = {r["Properties"]["Topics"][0]: r["Properties"] for r in template["Resources"].values()
                 if r.get("Type") == "AWS::Lambda::EventSourceMapping" and "Topics" in r.get("Properties", {})}
    assert sorted((m.topic, m.maximum_batching_window_seconds, m.maximum_pollers) for m in parsed) == [
        ("cluster-events", resources["cluster-events"]["MaximumBatchingWindowInSeconds"],
         resources["cluster-events"]["ProvisionedPollerConfig"]["MaximumPollers"]),
        ("logs.clustergenie", resources["logs.clustergenie"]["MaximumBatchingWindowInSeconds"], 1),
    ]


def test_a_failed_deploy_names_the_first_failing_resource():
    # Events as describe_stack_events returns them (newest first); the report puts the cause on top.
    at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    events = [
        {"Timestamp": at + dt.timedelta(seconds=4), "LogicalResourceId": "stk", "ResourceType": "AWS::CloudFormation::Stack",
         "ResourceStatus": "ROLLBACK_COMPLETE"},
        {"Timestamp": at + dt.timedelta(seconds=3), "LogicalResourceId": "JobsQueue", "ResourceType": "AWS::SQS::Queue",
         "ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "Resource creation cancelled"},
        {"Timestamp": at + dt.timedelta(seconds=2), "LogicalResourceId": "EventHandlerMskEventSource",
         "ResourceType": "AWS::Lambda::EventSourceMapping", "ResourceStatus": "CREATE_FAILED",
         "ResourceStatusReason": "Unsupported event source mapping source service kafka"},
        {"Timestamp": at, "LogicalResourceId": "stk", "ResourceType": "AWS::CloudFormation::Stack",
         "ResourceStatus": "CREATE_IN_PROGRESS"},
    ]
    report = deploy.failure_report(events, "stk").splitlines()
    assert report[0] == ("first failing resource: EventHandlerMskEventSource (AWS::Lambda::EventSourceMapping) "
                         "CREATE_FAILED: Unsupported event source mapping source service kafka")
    assert "CREATE_IN_PROGRESS" in report[2] and "ROLLBACK_COMPLETE" in report[-1]
