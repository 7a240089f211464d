"""A failed stack operation is readable: the deploy stops with the first failing resource and its reason,
then the stack's events (what CloudFormation said), instead of a bare ROLLBACK_COMPLETE."""
from __future__ import annotations

import json
import uuid

import pytest

from devstack import deploy
from devstack.process import StackError

pytestmark = pytest.mark.localstack


def test_a_failed_deploy_prints_the_first_failing_resource_and_its_reason(stack, aws):
    cfn, s3 = aws("cloudformation"), aws("s3")
    name = f"cg-broken-{uuid.uuid4().hex[:8]}"
    bucket = f"{name}-artifacts"
    # A function whose code is not where the template says: the commonest real failure (an artifact that
    # was never uploaded), and one that LocalStack reports as AWS does, on that resource.
    template = {"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Broken": {"Type": "AWS::Lambda::Function", "DependsOn": "Queue", "Properties": {
            "Runtime": "python3.11", "Handler": "app.handler", "Role": "arn:aws:iam::000000000000:role/none",
            "Code": {"S3Bucket": bucket, "S3Key": "never-uploaded.zip"}}}}}
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="template.json", Body=json.dumps(template).encode())
    try:
        with pytest.raises(StackError) as failure:
            deploy.deploy_stack(cfn, name, f"{stack['endpoint_url']}/{bucket}/template.json", {})
        report = str(failure.value)
        first = next(line for line in report.splitlines() if line.startswith("first failing resource:"))
        assert first.startswith("first failing resource: Broken (AWS::Lambda::Function) CREATE_FAILED: ")
        assert len(first) > len("first failing resource: Broken (AWS::Lambda::Function) CREATE_FAILED: ") + 5
        assert "stack events (oldest first):" in report
    finally:
        if deploy.stack_status(cfn, name) is not None:
            deploy.delete_stack(cfn, name)
        s3.delete_object(Bucket=bucket, Key="template.json")
        s3.delete_bucket(Bucket=bucket)
