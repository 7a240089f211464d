"""LocalStack's own floor under the job drain: a backlog drained by a function that does nothing, against SQS's rate.

    PYTHONPATH=. .venv/bin/python bench/bench_esm_floor.py [--messages 1000] [--rounds 3] [--threads 8]

Needs `./dev up` (LocalStack on 127.0.0.1; `stack.json` under CG_STATE_DIR). Only 127.0.0.1.

The job pipeline's drain goal (issue 16) is 0.5 of SQS's own send-receive-delete rate on the same LocalStack. This
bench measures what LocalStack alone allows a drain before any of the project's work: a temporary queue, a
temporary function whose handler returns at once (`{"batchItemFailures": []}`), and an event source mapping with the
job worker's own settings (batch size, batching window, scaling config, response types: read from the deployed
mapping). Each round, alternating:

1. Ceiling: `bench_job_pipeline.bench_sqs` (send, receive, delete by `--threads` threads, to the last delete).
2. Floor: `--messages` messages sent with the mapping disabled; the mapping is enabled and the span runs until the
   queue holds no message, visible or in flight (`GetQueueAttributes` every 50 ms, which LocalStack also serves
   during the span: a slight cost on the floor's side). Every message must be gone: a message the mapping did not
   delete would keep the queue from emptying, and the round would time out.

It prints each side's rate, the floor / ceiling ratio and the CPU per message by process (`cpu_accounting.py`).
The queue, the mapping and the function are deleted at the end.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import pathlib
import sys
import time
import uuid
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cpu_accounting  # noqa: E402 - bench/ (the script's own directory) is on sys.path
from bench_job_pipeline import STATE, bench_sqs, mapping_of, set_mapping  # noqa: E402
from chalicelib.aws import keep_connections_alive  # noqa: E402
from quiescence import wait_until_quiet  # noqa: E402

NOOP = 'def handler(event, context):\n    return {"batchItemFailures": []}\n'
MAPPING_SETTINGS = ("BatchSize", "MaximumBatchingWindowInSeconds", "ScalingConfig", "FunctionResponseTypes")


def noop_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", NOOP)
    return buffer.getvalue()


def wait(what: str, done, timeout: float = 120, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def create_noop(awslambda, worker: dict, name: str) -> str:
    """A function with the job worker's runtime, role and memory whose handler does nothing."""
    awslambda.create_function(FunctionName=name, Runtime=worker["Runtime"], Role=worker["Role"],
                              Handler="handler.handler", Code={"ZipFile": noop_zip()},
                              MemorySize=worker.get("MemorySize", 128), Timeout=worker.get("Timeout", 60))
    wait("the no-op function", lambda: awslambda.get_function_configuration(FunctionName=name)["State"] == "Active")
    return name


def in_queue(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def floor_round(sqs, awslambda, function: str, settings: dict, messages: int, threads: int) -> dict:
    url = sqs.create_queue(QueueName=f"clustergenie-floor-{uuid.uuid4().hex[:8]}",
                           Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = awslambda.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, Enabled=False,
                                                    **settings)["UUID"]
    try:
        wait("the new mapping", lambda: awslambda.get_event_source_mapping(UUID=mapping)["State"] == "Disabled")
        body = json.dumps({"job_id": f"job-{uuid.uuid4()}", "trace_id": uuid.uuid4().hex})
        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": body} for i in range(10)]), range(messages // 10)))
        wait("the backlog", lambda: in_queue(sqs, url) == messages)
        quiet = wait_until_quiet(STATE)
        cpu_before = cpu_accounting.snapshot(STATE)
        set_mapping(awslambda, mapping, True)
        start = time.time()  # once the mapping reads Enabled, as the job drain's span starts (bench_job_pipeline.py)
        wait("the backlog to drain", lambda: in_queue(sqs, url) == 0, timeout=300, interval=0.05)
        seconds = time.time() - start
        spent = cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE))
        return {"messages": messages, "seconds": round(seconds, 2), "drained_per_s": round(messages / seconds, 1),
                "cpu_ms_per_message": cpu_accounting.per_unit_ms(spent, messages), "began_quiet": quiet}
    finally:
        awslambda.delete_event_source_mapping(UUID=mapping)
        sqs.delete_queue(QueueUrl=url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    import boto3

    stack = json.loads((STATE / "stack.json").read_text())
    if not stack["endpoint_url"].startswith("http://127.0.0.1:"):
        raise SystemExit("only a LocalStack on 127.0.0.1 is benchmarked")
    session = boto3.session.Session(region_name=stack.get("region", "us-east-1"), aws_access_key_id="test",
                                    aws_secret_access_key="test")
    sqs = keep_connections_alive(session.client("sqs", endpoint_url=stack["endpoint_url"]))
    awslambda = session.client("lambda", endpoint_url=stack["endpoint_url"])
    worker_name = stack["functions"]["job_worker"]
    worker = awslambda.get_function_configuration(FunctionName=worker_name)
    worker_mapping = awslambda.get_event_source_mapping(UUID=mapping_of(awslambda, worker_name))
    settings = {k: worker_mapping[k] for k in MAPPING_SETTINGS if worker_mapping.get(k)}
    print(json.dumps({"mapping_settings": settings, "runtime": worker["Runtime"],
                      "load_before": os.getloadavg()}), flush=True)
    function = create_noop(awslambda, worker, f"cg-bench-noop-{uuid.uuid4().hex[:6]}")
    ratios = []
    try:
        floor_round(sqs, awslambda, function, settings, 200, args.threads)  # unmeasured: the no-op's environments
        for n in range(args.rounds):
            ceiling = bench_sqs(sqs, args.messages, args.threads, 120)
            floor = floor_round(sqs, awslambda, function, settings, args.messages, args.threads)
            ratios.append(floor["drained_per_s"] / ceiling["send_receive_delete_per_s"])
            print(json.dumps({"round": n + 1, "sqs_ceiling": ceiling, "noop_drain": floor,
                              "noop_drain_over_sqs": round(ratios[-1], 3)}), flush=True)
    finally:
        awslambda.delete_function(FunctionName=function)
    print(f"no-op drain / SQS ceiling: {', '.join(f'{r:.3f}' for r in ratios)}   load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
