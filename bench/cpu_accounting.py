"""CPU seconds spent by each process of a `./dev` stack, read from /proc (Linux), for the benches' per-job split.

    before = snapshot(state_dir); ...; spent = delta(before, snapshot(state_dir))

Groups: `localstack` (the gateway, SQS, the Lambda service and the event source mapping pollers: one process
with threads), one group per deployed function (each execution environment is a child process of LocalStack,
named by its `AWS_LAMBDA_FUNCTION_NAME`), `mariadb`, `redis`, `kafka`, `msk-bridge`, `bench` (this process),
and `machine` (every core's busy time, everyone's: other stacks on a shared machine included). A process that
started during the interval counts from zero; one that ended during it is missed (execution environments live
for minutes, so only a crashed or replaced one is), never counted negative.
"""
from __future__ import annotations

import os
import pathlib

TICK = os.sysconf("SC_CLK_TCK")
PID_FILES = {"localstack": "localstack.pid", "mariadb": "mariadb.pid", "redis": "redis.pid", "kafka": "kafka.pid",
             "msk-bridge": "msk-bridge.pid"}


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process itself: its reaped children are not added, so an execution
    environment that LocalStack reaped is not counted again as LocalStack's)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the command: state ppid ... utime(12) stime(13), counted from field 3
    return int(fields[1]), sum(int(f) for f in fields[11:13]) / TICK


def _function_of(pid: int) -> str | None:
    try:
        environ = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
            name = item.split(b"=", 1)[1].decode()
            # `<stack>-JobWorker-<suffix>` -> `lambda:JobWorker`
            parts = name.split("-")
            return "lambda:" + (parts[-2] if len(parts) >= 3 else name)
    return None


def _pid(state_dir: pathlib.Path, name: str) -> int | None:
    try:
        return int((state_dir / "run" / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _machine_busy() -> float:
    """Busy CPU seconds of all cores since boot (user + nice + system + irq + softirq + steal)."""
    fields = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    return (sum(values[:3]) + sum(values[5:8])) / TICK


def snapshot(state_dir: pathlib.Path) -> dict[str, float]:
    """CPU seconds so far per group (see the module docstring)."""
    owners: dict[int, str] = {}
    for group, pid_file in PID_FILES.items():
        pid = _pid(state_dir, pid_file)
        if pid is not None:
            owners[pid] = group
    seconds: dict[str, float] = {"bench": _stat(os.getpid())[1], "machine": _machine_busy()}
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, float]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
                children.setdefault(stat[0], []).append(int(entry.name))

    def tree(pid: int) -> list[int]:
        found, todo = [], [pid]
        while todo:
            current = todo.pop()
            found.append(current)
            todo.extend(children.get(current, []))
        return found

    localstack = next((pid for pid, group in owners.items() if group == "localstack"), None)
    per_process: dict[int, tuple[str, float]] = {}  # pid -> (group, seconds)
    if localstack is not None:
        for child in children.get(localstack, []):
            function = _function_of(child)
            if function is not None:
                for p in tree(child):
                    if p in stats:
                        per_process[p] = (function, stats[p][1])
    for pid, group in owners.items():
        for p in tree(pid):
            if p in stats and p not in per_process:
                per_process[p] = (group, stats[p][1])
    for group, spent in per_process.values():
        seconds[group] = seconds.get(group, 0.0) + spent
    seconds["_processes"] = per_process  # type: ignore[assignment]
    return seconds


def delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per group between two snapshots, process by process: a process that ended in between counts
    nothing (not minus its whole past), one that started counts from zero."""
    spent = {group: 0.0 for group in after if group != "_processes"}
    for group in ("bench", "machine"):
        spent[group] = after[group] - before.get(group, 0.0)
    old = before.get("_processes", {})
    for pid, (group, seconds) in after["_processes"].items():
        earlier = old.get(pid)
        spent[group] += seconds - (earlier[1] if earlier and earlier[0] == group else 0.0)
    return {group: round(value, 2) for group, value in sorted(spent.items())}


def per_unit_ms(spent: dict[str, float], units: int) -> dict[str, float]:
    """Milliseconds of CPU per unit (job, message) by group; `stack` is the sum over the stack's own groups."""
    own = {g: s for g, s in spent.items() if g not in ("machine",)}
    out = {g: round(s * 1000 / units, 2) for g, s in own.items()}
    out["stack"] = round(sum(own.values()) * 1000 / units, 2)
    out["machine"] = round(spent.get("machine", 0.0) * 1000 / units, 2)
    return out
