"""The local stack's own costs: `./dev up` on a warm machine, and the stack's peak memory under the
LocalStack test tier.

    .venv/bin/python bench/bench_stack.py            # after one ./dev up

Memory is the summed RSS of every process in the process groups `./dev` started (LocalStack with its
Lambda processes, the broker, the Pushgateway, Prometheus, the bridge) plus the MariaDB and Redis servers
it reuses, sampled every 0.5 s. The baseline printed beside it is the same sum with the stack idle.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATE = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))
PAGE = os.sysconf("SC_PAGE_SIZE")


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (pgid, command name, rss bytes) for every process we can read."""
    out = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            out[int(entry.name)] = (int(fields[2]), comm, int(fields[21]) * PAGE)
        except (OSError, ValueError, IndexError):
            continue
    return out


def stack_rss() -> dict[str, int]:
    groups = {}
    for pidfile in (STATE / "run").glob("*.pid"):
        try:
            groups[int(pidfile.read_text())] = pidfile.stem
        except ValueError:
            continue
    totals: dict[str, int] = {}
    for _pid, (pgid, comm, rss) in _processes().items():
        name = groups.get(pgid) or ({"mariadbd": "mariadb (external)", "redis-server": "redis (external)"}.get(comm))
        if name:
            totals[name] = totals.get(name, 0) + rss
    return totals


def main() -> int:
    env = dict(os.environ)
    started = time.monotonic()
    subprocess.run([str(ROOT / "dev"), "up"], check=True, env=env, stdout=subprocess.DEVNULL)
    warm_up = time.monotonic() - started

    idle = stack_rss()
    peak: dict[str, int] = dict(idle)
    peak_total = sum(idle.values())
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_total
        while not stop.is_set():
            now = stack_rss()
            peak_total = max(peak_total, sum(now.values()))
            for name, rss in now.items():
                peak[name] = max(peak.get(name, 0), rss)
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "dev"), "test", "localstack", "-q"], env=env, stdout=subprocess.DEVNULL)
    tier = time.monotonic() - started
    stop.set()
    sampler.join()

    mb = 1024 * 1024
    print(f"./dev up (warm, nothing to do):        {warm_up:6.1f} s")
    print(f"./dev test localstack (exit {result.returncode}):       {tier:6.1f} s")
    print(f"stack RSS idle (baseline):             {sum(idle.values()) / mb:6.0f} MB")
    print(f"stack RSS peak under the tier:         {peak_total / mb:6.0f} MB  ({peak_total / max(sum(idle.values()), 1):.2f}x idle)")
    for name in sorted(peak, key=peak.get, reverse=True):
        print(f"  {name:<22} idle {idle.get(name, 0) / mb:6.0f} MB   peak {peak[name] / mb:6.0f} MB")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
