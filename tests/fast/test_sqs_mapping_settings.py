"""Issue 16: LocalStack's SQS event source mappings run as AWS's with the same settings (localstack/README.md).

The poller patch itself runs inside LocalStack (the localstack tier drains jobs through it); here, without
LocalStack, what decides its behaviour: how many batches a mapping may run at once, and the poller settings
`./dev up` starts LocalStack with."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from devstack.config import StackConfig
from devstack.services import LocalStack

MODULE = (pathlib.Path(__file__).resolve().parents[2] / "localstack" / "executor" / "clustergenie_lambda_executor"
          / "sqs_concurrency.py")


@pytest.fixture
def sqs_concurrency():
    # Loaded by path: `localstack/` is deliberately not a package (it would shadow LocalStack itself), and the
    # module imports LocalStack only when installed into it.
    spec = importlib.util.spec_from_file_location("cg_sqs_concurrency_under_test", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scaling, cap, expected", [
    ({"MaximumConcurrency": 10}, None, 10),  # the template's job worker mapping
    (None, None, 5),                          # AWS's five pollers to start with
    ({}, None, 5),
    ({"MaximumConcurrency": 10}, "3", 3),     # CG_ESM_SQS_CONCURRENCY caps it
    ({"MaximumConcurrency": 2}, "8", 2),      # but never raises it
    ({"MaximumConcurrency": 10}, "1", 1),     # 1: LocalStack's own one batch at a time
])
def test_a_mapping_runs_up_to_its_maximum_concurrency(sqs_concurrency, monkeypatch, scaling, cap, expected):
    if cap is None:
        monkeypatch.delenv("CG_ESM_SQS_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("CG_ESM_SQS_CONCURRENCY", cap)
    config = {"BatchSize": 10} if scaling is None else {"BatchSize": 10, "ScalingConfig": scaling}
    assert sqs_concurrency.concurrency_for(config) == expected


def test_localstack_polls_again_at_once_while_a_backlog_exists(monkeypatch, tmp_path):
    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))
    _, env = LocalStack(StackConfig.from_env()).command()
    assert float(env["LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC"]) == 0  # LocalStack's default: 1 s per batch
    assert float(env["LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC"]) <= 1  # default: up to 10 s idle
