"""Fixtures of the LocalStack tier: the CloudFormation stack `./dev up` deployed, as its outputs are
recorded in stack.json (function, queue and rule names are the stack's, never spelled out here).

These tests go through the real triggers (API Gateway, the SQS event source mapping, the MSK bridge,
Lambda Invoke) of the app deployed to LocalStack. Without a deployment they are skipped on a developer's
machine, but under CI (env CI set) a missing deployment is a failure, never a silent skip.
"""
from __future__ import annotations

import json
import os
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

STATE_DIR = pathlib.Path(os.environ.get("CG_STATE_DIR", pathlib.Path(__file__).resolve().parents[2] / ".local"))
STACK_FILE = STATE_DIR / "stack.json"


@pytest.fixture(scope="session")
def stack() -> dict[str, Any]:
    """stack.json: api_url, endpoint_url, and the stack's function, queue and rule names (from its outputs)."""
    if not STACK_FILE.exists():
        message = f"{STACK_FILE} is missing: deploy first with `./dev up`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(STACK_FILE.read_text())


@pytest.fixture(scope="session")
def aws(stack):
    """boto3 clients for LocalStack (its documented dummy credentials; never a real account)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        region_name=stack.get("region", "us-east-1"), aws_access_key_id="test", aws_secret_access_key="test"
    )
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=120)

    def client(name: str):
        return session.client(name, endpoint_url=stack["endpoint_url"], config=config)

    return client


@pytest.fixture(scope="session")
def function_env(stack, aws) -> dict[str, str]:
    """The deployed functions' settings (database, Redis, Kafka, pushgateway): what the Lambdas really use.

    The root conftest points this process at the fast tier's database and Redis db; the LocalStack tier
    must look where the deployed functions write instead.
    """
    config = aws("lambda").get_function_configuration(FunctionName=stack["functions"]["api"])
    return config["Environment"]["Variables"]


@pytest.fixture(scope="session")
def app_db(function_env) -> Iterator[Any]:
    """A connection to the deployed app's database (`clustergenie`, not the fast tier's test database)."""
    import pymysql
    import pymysql.cursors

    password = os.environ.get("CG_DB_PASSWORD")
    if password is None:
        pytest.fail("CG_DB_PASSWORD is not set ($CG_STATE_DIR/stack.env provides it)")
    conn = pymysql.connect(
        host=function_env.get("CG_DB_HOST", "127.0.0.1"),
        port=int(function_env.get("CG_DB_PORT", "3306")),
        user=function_env.get("CG_DB_USER", "clustergenie"),
        password=password,
        database=function_env.get("CG_DB_NAME", "clustergenie"),
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
    )
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def app_redis(function_env):
    """Redis as the deployed functions see it."""
    import redis

    # The functions read the password from Secrets Manager; this process has it from stack.env (issue 18).
    return redis.Redis.from_url(function_env.get("CG_REDIS_URL", "redis://127.0.0.1:6379/0"),
                                password=os.environ.get("CG_REDIS_PASSWORD"), decode_responses=True)


@pytest.fixture()
def unique() -> str:
    return f"lstest-{uuid.uuid4().hex[:12]}"
