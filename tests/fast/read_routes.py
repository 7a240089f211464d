"""The read routes whose cost must stay flat as the tables grow (issue 16), over the data both of their users
seed (clusters `bench-c<n>`, jobs `bench-j<8 digits>`, metrics and log lines of clusters bench-c0..9).

One list for both: `tests/fast/test_explain_reads.py` EXPLAINs every statement these routes send and compares
the server's `Handler_read_*` counters at two sizes; `bench/bench_reads.py` times them at 10k and 1M rows.
"""
from __future__ import annotations

READ_ROUTES = (
    "/api/v1/clusters",
    "/api/v1/clusters/bench-c5",
    "/api/v1/jobs",
    "/api/v1/jobs?sort_by=created_at&sort_dir=asc",
    "/api/v1/jobs?sort_by=id&sort_dir=desc",
    "/api/v1/jobs?sort_by=id&sort_dir=asc",
    "/api/v1/jobs?page_size=100",
    "/api/v1/jobs/bench-j00000001",
    "/api/v1/metrics",
    "/api/v1/metrics?type=cpu",
    "/api/v1/metrics?cluster_id=bench-c3",
    "/api/v1/metrics?cluster_id=bench-c3&type=cpu",
    "/api/v1/metrics?page_size=100",
    "/api/v1/jobs/bench-j00000001/logs",
)
