"""The `aws` DropletProvider: one EC2 instance per droplet, through boto3 (`chalicelib.aws.client("ec2")`).

- Launch is idempotent: an instance already tagged with the droplet id is reused, and the droplet id is
  the RunInstances `ClientToken` (AWS's own guard; moto and LocalStack ignore it), so a job retried after
  a crash gets the instance it already started instead of a second one.
- Instances start in the deployment's own region (the client's); the droplet's region is kept as a tag.
  Sizes map to instance types; images are an AMI id (`ami-...`) or a known slug resolved by EC2 itself
  from AWS's public SSM parameter (`resolve:ssm:...`).
- Which errors fail the job and which are retried: EC2 refusing the request (bad image, bad parameter,
  quota) cannot be fixed by retrying: ProviderError, the job fails with the reason. Throttling, EC2's
  own faults, missing capacity and an unreachable endpoint are outages: the exception propagates, the
  worker leaves the message to SQS and the job is retried (then dead-lettered).
- On LocalStack, EC2 (its moto-based backend) returns real-looking instance ids and private IPs.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.providers import LaunchedInstance, ProviderError

INSTANCE_TYPES: dict[str, str] = {
    "s-1vcpu-1gb": "t3.micro", "s-1vcpu-2gb": "t3.small", "s-2vcpu-2gb": "t3.small",
    "s-2vcpu-4gb": "t3.medium", "s-4vcpu-8gb": "t3.large", "s-8vcpu-16gb": "t3.xlarge",
}
_SSM = "resolve:ssm:/aws/service/canonical/ubuntu/server/{}/stable/current/amd64/hvm/ebs-gp2/ami-id"
IMAGES: dict[str, str] = {
    "ubuntu-22-04-x64": _SSM.format("22.04"), "ubuntu-24-04-x64": _SSM.format("24.04"),
    "ubuntu-20-04-x64": _SSM.format("20.04"),
}
# Error codes that say "try again later", not "this request is wrong".
RETRYABLE_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "InsufficientInstanceCapacity",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
})


def _ec2() -> Any:
    from chalicelib.aws import client

    return client("ec2")


def _refused(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") not in RETRYABLE_CODES


class AwsProvider:
    name = "aws"

    def __init__(self, ec2: Any = None) -> None:
        self._ec2 = ec2

    @property
    def ec2(self) -> Any:
        return self._ec2 if self._ec2 is not None else _ec2()

    def launch(self, droplet: dict[str, Any]) -> LaunchedInstance:
        image = droplet["image"]
        image_id = image if image.startswith("ami-") else IMAGES.get(image)
        if image_id is None:
            raise ProviderError(f"image {image!r} has no AMI (known: {', '.join(IMAGES)}, or an ami- id)")
        instance_type = INSTANCE_TYPES.get(droplet["size"])
        if instance_type is None:
            raise ProviderError(f"size {droplet['size']!r} has no instance type")
        tags = [{"Key": "Name", "Value": str(droplet.get("name") or droplet["id"])},
                {"Key": "clustergenie:droplet_id", "Value": droplet["id"]},
                {"Key": "clustergenie:cluster_id", "Value": str(droplet.get("cluster_id") or "")},
                {"Key": "clustergenie:region", "Value": str(droplet.get("region") or "")}]
        existing = self._instance_of(droplet["id"])
        if existing is not None:
            return LaunchedInstance(instance_id=existing["InstanceId"], ip_address=existing["PrivateIpAddress"])
        try:
            response = self.ec2.run_instances(
                ImageId=image_id, InstanceType=instance_type, MinCount=1, MaxCount=1, ClientToken=droplet["id"],
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        except ClientError as exc:
            if _refused(exc):
                raise ProviderError(f"EC2 refused the launch: {exc}") from None
            raise
        instance = response["Instances"][0]
        ip = instance.get("PrivateIpAddress") or self._private_ip(instance["InstanceId"])
        if not ip:
            raise ProviderError(f"instance {instance['InstanceId']} has no private IP")
        return LaunchedInstance(instance_id=instance["InstanceId"], ip_address=ip)

    def _instance_of(self, droplet_id: str) -> dict[str, Any] | None:
        """The live instance an earlier launch of this droplet started, if any."""
        try:
            reservations = self.ec2.describe_instances(Filters=[
                {"Name": "tag:clustergenie:droplet_id", "Values": [droplet_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
        except ClientError as exc:
            if _refused(exc):
                raise ProviderError(f"EC2 cannot list instances: {exc}") from None
            raise
        return next((i for r in reservations for i in r["Instances"] if i.get("PrivateIpAddress")), None)

    def _private_ip(self, instance_id: str) -> str | None:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return next((i.get("PrivateIpAddress") for r in reservations for i in r["Instances"]), None)

    def terminate(self, droplet: dict[str, Any]) -> None:
        instance_id = droplet.get("provider_instance_id")
        if not instance_id:  # never launched: nothing to stop
            return
        try:
            self.ec2.terminate_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
                return  # already gone
            if _refused(exc):
                raise ProviderError(f"EC2 refused to terminate {instance_id}: {exc}") from None
            raise

    def utilisation(self, droplet: dict[str, Any]) -> dict[str, float]:
        """EC2 reports no memory or disk without an agent and no figures for a stopped machine; a
        running instance answers with nothing invented: an empty reading."""
        instance_id = droplet.get("provider_instance_id")
        if not instance_id:
            return {}
        try:
            reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError as exc:
            if _refused(exc):
                raise ProviderError(f"EC2 cannot describe {instance_id}: {exc}") from None
            raise
        if not any(r["Instances"] for r in reservations):
            raise ProviderError(f"instance {instance_id} does not exist")
        return {}
