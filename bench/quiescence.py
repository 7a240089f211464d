"""Start a bench phase from a quiet stack: the work an earlier phase caused is finished before the next is timed.

A phase's requests leave work behind them (events relayed to Kafka, log lines shipped, both consumed through the
MSK bridge, the broker persisting its store). On a 2-core machine that work runs in the next phase's time and is
counted against it, which spread `bench_job_pipeline.py`'s front ratio from 0.37 to 0.88 on the same code
(docs/benchmarks.md, third round). `wait_until_quiet` waits until the bridge reports no lag on any mapping (measured
after the call began) and the stack's processes used less than `busy_cores` of the machine over the last second.
"""
from __future__ import annotations

import json
import pathlib
import time

import cpu_accounting  # noqa: E402 - bench/ is on sys.path for the benches


def bridge_caught_up(state_dir: pathlib.Path, since: float) -> bool:
    """Every mapping of the bridge's status file reports zero lag, measured after `since` (epoch seconds)."""
    try:
        status = json.loads((state_dir / "msk-bridge" / "status.json").read_text())
    except (OSError, ValueError):
        return True  # no bridge on this stack: nothing to wait for
    mappings = status.get("mappings") or {}
    return all((m.get("lag_measured_at") or 0) > since and not m.get("total_lag") for m in mappings.values())


def wait_until_quiet(state_dir: pathlib.Path, timeout: float = 180.0, busy_cores: float = 0.25) -> dict[str, float]:
    """Block until the stack is quiet (see the module docstring) or `timeout`; {"waited_s", "busy_cores"} of the
    last second looked at, so a bench can print how quiet its phase began."""
    started, since = time.monotonic(), time.time()
    before = cpu_accounting.snapshot(state_dir)
    busy = float("inf")
    while time.monotonic() - started < timeout:
        time.sleep(1.0)
        after = cpu_accounting.snapshot(state_dir)
        spent = cpu_accounting.delta(before, after)
        before = after
        busy = sum(seconds for group, seconds in spent.items() if group not in ("machine", "bench"))
        if busy < busy_cores and bridge_caught_up(state_dir, since):
            break
    return {"waited_s": round(time.monotonic() - started, 1), "busy_cores": round(busy, 2)}
