"""The local broker's CPU per record written, against what it already stores (the case for topic retention).

    .venv/bin/python bench/bench_broker_store.py [--stored-mb 0,50,250] [--records 1800] [--settle 6]

Starts its own noida-db (the stack's broker binary) on a free 127.0.0.1 port in a temporary data directory,
so the stack's broker is not touched. For each size: fills a filler topic with about that many MB of 400-byte
records, then writes `--records` records to a measured topic as the outbox relay does (batches of 100 records
over 3 partitions, acks=all, a flush per batch) and reads the broker process's CPU (/proc) from the first send
until `--settle` seconds after the last acknowledgement: the broker persists its store after writes, so its
cost shows after the send returns. Printed: CPU ms per record written and the ratio to the empty store's, which
is measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BROKER = ROOT / ".venv" / "bin" / "noida-db"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU of the process and its threads, plus that of its children (the wheel's launcher runs the binary)."""
    total = 0.0
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the bench's broker did not start")


def measure(stored_mb: int, records: int, settle: float) -> dict:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as data:
        broker = subprocess.Popen([str(BROKER), "start", "--data-dir", data, "--host", "127.0.0.1", "--only", "kafka",
                                   "--kafka-port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port)
            bootstrap = f"127.0.0.1:{port}"
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            admin.create_topics([NewTopic("filler", 3, 1), NewTopic("measured", 3, 1)])
            admin.close()
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2,
                                     max_in_flight_requests_per_connection=1, enable_idempotence=False)
            value = b"x" * 400
            for i in range(stored_mb * 1024 * 1024 // len(value)):
                producer.send("filler", key=str(i % 30).encode(), value=value)
                if i % 5000 == 4999:
                    producer.flush()
            producer.flush()
            time.sleep(settle)  # the filler's own persisting is not measured
            store = sum(f.stat().st_size for f in pathlib.Path(data).rglob("*") if f.is_file())
            before = cpu_seconds(broker.pid)
            started = time.perf_counter()
            for i in range(0, records, 100):
                for j in range(100):
                    producer.send("measured", key=str((i + j) % 30).encode(), value=value, headers=[("sig", b"s" * 44)])
                producer.flush()
            sent = time.perf_counter() - started
            after_send = cpu_seconds(broker.pid)
            time.sleep(settle)
            after = cpu_seconds(broker.pid)
            producer.close()
            return {"stored_mb": stored_mb, "store_file_mb": round(store / 2**20, 1), "records": records,
                    "send_seconds": round(sent, 2),
                    "cpu_ms_per_record_while_sending": round(1000 * (after_send - before) / records, 3),
                    "cpu_ms_per_record_with_persisting": round(1000 * (after - before) / records, 3)}
        finally:
            broker.terminate()
            try:
                broker.wait(10)
            except subprocess.TimeoutExpired:
                broker.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored-mb", default="0,50,250", help="sizes to fill the store with, in MB of records")
    parser.add_argument("--records", type=int, default=1800)
    parser.add_argument("--settle", type=float, default=6.0)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}", flush=True)
    rows = [measure(int(mb), args.records, args.settle) for mb in args.stored_mb.split(",")]
    base = rows[0]["cpu_ms_per_record_with_persisting"] or 0.001
    for row in rows:
        row["ratio_to_first"] = round(row["cpu_ms_per_record_with_persisting"] / base, 1)
        print(json.dumps(row), flush=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
