"""Start a bench phase from a quiet stack: the work an earlier phase caused is finished before the next is timed.

A phase's requests leave work behind them (events relayed to Kafka, log lines shipped, both consumed through the
MSK bridge, the broker persisting its store). On a 2-core machine that work runs in the next phase's time and is
counted against it, which spread `bench_job_pipeline.py`'s front ratio from 0.37 to 0.88 on the same code
(docs/benchmarks.md, third round). `wait_until_quiet` waits until every mapping of the bridge has committed its topic's
end offsets and the stack's processes used less than `busy_cores` of the machine over the last second.
"""
from __future__ import annotations

import json
import pathlib
import time

import cpu_accounting  # noqa: E402 - bench/ is on sys.path for the benches


def bridge_caught_up(state_dir: pathlib.Path) -> bool:
    """Every mapping of the bridge has committed its topic's end offsets: read from the broker now, with a client of
    the bench's own (the bridge's status file holds its lag monitor's last measurement, up to 5 s old)."""
    from devstack.config import load_stack_env

    try:
        status = json.loads((state_dir / "msk-bridge" / "status.json").read_text())
    except (OSError, ValueError):
        return True  # no bridge on this stack: nothing to wait for
    env = load_stack_env(state_dir, required=False)
    from kafka import KafkaConsumer

    from devstack.services import load_bridge_module

    partition_lag = load_bridge_module().partition_lag  # the bridge's own measure: end offset minus committed
    bootstrap = env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    for mapping in (status.get("mappings") or {}).values():
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=mapping["group"], enable_auto_commit=False)
        try:
            if any(partition_lag(consumer, mapping["topic"]).values()):
                return False
        finally:
            consumer.close()
    return True


def wait_until_quiet(state_dir: pathlib.Path, timeout: float = 180.0, busy_cores: float = 0.25) -> dict[str, float]:
    """Block until the stack is quiet (see the module docstring) or `timeout`; {"waited_s", "busy_cores"} of the
    last second looked at, so a bench can print how quiet its phase began."""
    started = time.monotonic()
    before = cpu_accounting.snapshot(state_dir)
    busy = float("inf")
    while time.monotonic() - started < timeout:
        time.sleep(1.0)
        after = cpu_accounting.snapshot(state_dir)
        spent = cpu_accounting.delta(before, after)
        before = after
        busy = sum(seconds for group, seconds in spent.items() if group not in ("machine", "bench"))
        if busy < busy_cores and bridge_caught_up(state_dir):
            break
    return {"waited_s": round(time.monotonic() - started, 1), "busy_cores": round(busy, 2)}
