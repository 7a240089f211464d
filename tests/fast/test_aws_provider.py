"""The `aws` DropletProvider against moto's in-process EC2 (`moto.mock_aws`).

A fake is enough here: what is pinned down is our side of the EC2 API (which request a droplet becomes,
idempotent launch by ClientToken, which errors fail the job and which are retried), and moto implements
RunInstances/DescribeInstances/TerminateInstances with real request validation. The real launch, by the
real deployed worker against LocalStack's EC2, is `tests/localstack/test_job_pipeline.py`.
"""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib import db
from chalicelib.providers import ProviderError, set_provider
from chalicelib.providers.aws import AwsProvider

AMI = "ami-1e749f67"  # in moto's (and LocalStack's) default image list


@pytest.fixture
def ec2(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def droplet(**overrides):
    return {"id": "droplet-0001", "name": "web-1", "cluster_id": "cluster-1", "region": "nyc3",
            "size": "s-2vcpu-4gb", "image": AMI, "provider_instance_id": None, **overrides}


def test_launch_starts_one_tagged_instance_and_returns_its_id_and_private_ip(ec2):
    launched = AwsProvider(ec2).launch(droplet())
    [reservation] = ec2.describe_instances()["Reservations"]
    [instance] = reservation["Instances"]
    assert launched.instance_id == instance["InstanceId"] and launched.instance_id.startswith("i-")
    assert launched.ip_address == instance["PrivateIpAddress"]
    assert instance["InstanceType"] == "t3.medium"
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["clustergenie:droplet_id"] == "droplet-0001" and tags["clustergenie:region"] == "nyc3"


def test_a_repeated_launch_of_the_same_droplet_gets_the_same_instance(ec2):
    provider = AwsProvider(ec2)
    first, second = provider.launch(droplet()), provider.launch(droplet())
    assert first == second
    assert sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"]) == 1


def test_terminate_stops_the_instance_and_tolerates_one_already_gone(ec2):
    provider = AwsProvider(ec2)
    launched = provider.launch(droplet())
    provider.terminate(droplet(provider_instance_id=launched.instance_id))
    state = ec2.describe_instances(InstanceIds=[launched.instance_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] in ("shutting-down", "terminated")
    provider.terminate(droplet(provider_instance_id="i-0123456789abcdef0"))  # unknown: fine
    provider.terminate(droplet())  # never launched: nothing to do


def test_unknown_image_or_size_is_a_provider_error(ec2):
    with pytest.raises(ProviderError, match="image"):
        AwsProvider(ec2).launch(droplet(image="windows-95"))
    with pytest.raises(ProviderError, match="size"):
        AwsProvider(ec2).launch(droplet(size="huge"))


class _Raising:
    def __init__(self, code: str) -> None:
        self.code = code

    def describe_instances(self, **_):
        return {"Reservations": []}

    def run_instances(self, **_):
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "RunInstances")


def test_a_refusal_fails_the_job_but_an_outage_is_left_to_retry():
    with pytest.raises(ProviderError):
        AwsProvider(_Raising("InvalidParameterValue")).launch(droplet())
    for code in ("InsufficientInstanceCapacity", "RequestLimitExceeded", "InternalError"):
        with pytest.raises(ClientError):
            AwsProvider(_Raising(code)).launch(droplet())


def test_a_provision_job_with_provider_aws_gets_an_ec2_instance(ec2, client, make_cluster, job_queue):
    """Through POST /jobs and the job worker (chalice.test.Client), the droplet row gets the instance."""
    import json

    from chalice.test import Client

    from app import app
    from chalicelib.settings import get_settings

    set_provider("aws", AwsProvider(ec2))
    try:
        cluster = make_cluster()
        response = client.post("/api/v1/jobs", {"type": "provision", "parameters": {
            "cluster_id": cluster["id"], "provider": "aws", "image": AMI}})
        assert response.status_code == 201, response.body
        job_id = response.json["job"]["id"]
        [body] = [m["MessageBody"] for m in job_queue.messages if json.loads(m["MessageBody"])["job_id"] == job_id]
        with Client(app) as test_client:
            event = test_client.events.generate_sqs_event(message_bodies=[body],
                                                          queue_name=get_settings().jobs_queue_name)
            assert test_client.lambda_.invoke("job_worker", event).payload == {"batchItemFailures": []}
    finally:
        set_provider("aws", None)
    [row] = db.query("SELECT * FROM droplets WHERE cluster_id = %s", (cluster["id"],))
    [instance] = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert (row["status"], row["provider"]) == ("active", "aws")
    assert (row["provider_instance_id"], row["ip_address"]) == (instance["InstanceId"], instance["PrivateIpAddress"])
