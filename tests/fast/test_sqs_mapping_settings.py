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


def test_localstack_publishes_no_sqs_cloudwatch_metrics(monkeypatch, tmp_path):
    # Two PutMetricData through LocalStack's gateway per SendMessage cost it more CPU than the send itself
    # (issue 16, the front's third round); nothing in the stack reads AWS/SQS metrics.
    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))
    _, env = LocalStack(StackConfig.from_env()).command()
    assert env["SQS_DISABLE_CLOUDWATCH_METRICS"] == "1"


def test_localstack_runs_no_cloudwatch_or_logs(monkeypatch, tmp_path):
    # With CloudWatch and CloudWatch Logs on, every Lambda invoke made LocalStack call itself twice through its
    # own gateway (PutMetricData, PutLogEvents): about 30 ms of its CPU per invoke against under 4 without
    # (issue 16, sixth round). The running stack's view of the same is in tests/localstack/test_triggers.py.
    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))
    _, env = LocalStack(StackConfig.from_env()).command()
    services = env["SERVICES"].split(",")
    assert "cloudwatch" not in services and "logs" not in services
    assert {"cloudformation", "lambda", "apigateway", "sqs", "events", "secretsmanager"} <= set(services)


def test_localstack_calls_itself_in_memory(monkeypatch, tmp_path):
    # LocalStack's own calls (API Gateway invoking a function, an event source mapping receiving from and deleting
    # on its queue) go straight to its gateway, not through an HTTP connection to itself: LocalStack's CPU per
    # request of the no-op route 10.0 -> 6.2-7.3 ms (issue 16, seventh round).
    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))
    _, env = LocalStack(StackConfig.from_env()).command()
    assert env["IN_MEMORY_CLIENT"] == "1"


class Empty(Exception):
    """Stands in for LocalStack's EmptyPollResultsException."""


class FakeQueue:
    """A backlog drained by LocalStack-like rounds: receive up to `batch`, 'invoke' (sleep), done."""

    def __init__(self, messages: int, batch: int = 10, invoke_seconds: float = 0.01) -> None:
        import threading

        self.left, self.batch, self.invoke_seconds = messages, batch, invoke_seconds
        self.lock = threading.Lock()
        self.found = threading.Event()
        self.receives = self.running = self.most_at_once = 0
        self.slow_first = False
        self.left_when_slow_ended = None

    def one_batch(self) -> None:
        import time

        with self.lock:
            self.receives += 1
            got = min(self.batch, self.left)
            self.left -= got
            if not got:
                raise Empty()
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            slow, self.slow_first = self.slow_first, False
        self.found.set()  # what the handle_messages hook does
        time.sleep(self.invoke_seconds * (100 if slow else 1))
        with self.lock:
            self.running -= 1
            if slow:
                self.left_when_slow_ended = self.left


def test_an_empty_queue_costs_one_receive_per_poll(sqs_concurrency):
    import threading

    queue = FakeQueue(0)
    with pytest.raises(Empty):  # LocalStack's idle back-off follows
        sqs_concurrency.drain(queue.one_batch, 10, queue.found, threading.Event(), Empty)
    assert queue.receives == 1  # not one per concurrent slot


def test_a_backlog_is_drained_by_every_slot_without_waiting_for_the_slowest(sqs_concurrency):
    import threading

    queue = FakeQueue(400, invoke_seconds=0.01)
    queue.slow_first = True  # the first batch takes 1 s: the other slots go on meanwhile
    sqs_concurrency.drain(queue.one_batch, 4, queue.found, threading.Event(), Empty)
    assert queue.left == 0
    assert queue.most_at_once == 4  # slots added as batches ended, up to the maximum
    # The 39 other batches of 10 ms (~0.13 s over 3 slots) were all done before the slow one ended: rounds that
    # wait for their slowest batch would still have had 360 messages left.
    assert queue.left_when_slow_ended == 0


def test_a_stopped_mapping_starts_no_further_batch(sqs_concurrency):
    import threading

    queue = FakeQueue(1000, invoke_seconds=0.02)
    stopped = threading.Event()
    threading.Timer(0.1, stopped.set).start()
    sqs_concurrency.drain(queue.one_batch, 3, queue.found, stopped, Empty)
    assert queue.left > 500  # stopped after a few batches, not drained


def test_an_error_of_a_slot_is_raised_after_all_slots_ended(sqs_concurrency):
    import threading

    queue = FakeQueue(100)
    real = queue.one_batch
    calls = []

    def one_batch() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("queue gone")
        real()

    with pytest.raises(RuntimeError):  # LocalStack's error back-off follows
        sqs_concurrency.drain(one_batch, 3, queue.found, threading.Event(), Empty)
    assert queue.left == 0  # the other slots finished the backlog first


def test_slots_are_added_one_per_finished_batch_not_all_at_once(sqs_concurrency):
    import threading

    queue = FakeQueue(30, invoke_seconds=0.05)  # three batches
    sqs_concurrency.drain(queue.one_batch, 10, queue.found, threading.Event(), Empty)
    assert queue.left == 0
    # Two slots at first (the first receive's and one more); no third before a batch ended, and three batches
    # never needed ten environments starting at once.
    assert queue.most_at_once <= 3
