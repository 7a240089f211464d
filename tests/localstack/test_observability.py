"""Observability on the deployed stack: aggregated /metrics through API Gateway, the exporter's gauges on
the Pushgateway and in Prometheus, a job's log lines across functions, and every dashboard panel
returning data from the real Prometheus."""
from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from polling import wait_for

from chalicelib.functions.metrics_exporter import pushgateway_auth
from chalicelib.settings import get_settings

pytestmark = pytest.mark.localstack

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = os.environ.get("CG_PROMETHEUS_URL", "http://127.0.0.1:9090")

def run_exporter(stack, aws) -> dict:
    """Invoke the exporter with the event its EventBridge schedule sends."""
    region = stack.get("region", "us-east-1")
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "000000000000", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": region,
             "resources": [f"arn:aws:events:{region}:000000000000:rule/{stack['rules']['metrics_exporter']}"],
             "detail": {}}
    response = aws("lambda").invoke(FunctionName=stack["functions"]["metrics_exporter"], Payload=json.dumps(event).encode())
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    return result


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 60):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = http("GET", f"{stack['api_url'].rstrip('/')}/metrics")
    assert status == 200, body[:500]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def prom_query(expr: str) -> list[dict]:
    url = f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http("GET", url, timeout=10)
    payload = json.loads(body)
    assert payload["status"] == "success", (expr, payload)
    return payload["data"]["result"]


def test_http_counters_add_up_across_concurrent_api_instances(stack):
    route, path = "/api/v1/jobs/{job_id}/logs", "/api/v1/jobs/:job_id/logs"
    before = sample(scrape(stack), "clustergenie_http_requests_total", method="GET", route=route, status="404", path=path)
    n = 40
    url = f"{stack['api_url'].rstrip('/')}/api/v1/jobs/job-none-{time.time_ns()}/logs"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: http("GET", url)[0], range(n)))
    assert statuses == [404] * n
    after = scrape(stack)
    assert sample(after, "clustergenie_http_requests_total", method="GET", route=route, status="404", path=path) - before == n
    assert sample(after, "clustergenie_http_request_duration_seconds_count", method="GET", route=route, path=path) >= n


def test_exporter_gauges_reach_the_pushgateway_and_prometheus(stack, aws, app_db, function_env, unique):
    cluster_id = f"{unique}-c"
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO clusters (id, name, region) VALUES (%s, %s, 'nyc1')", (cluster_id, unique))
        cur.execute("INSERT INTO metrics (cluster_id, type, value, unit, timestamp) VALUES "
                    "(%s, 'cpu', 91.5, '%%', UTC_TIMESTAMP(6))", (cluster_id,))
    try:
        result = run_exporter(stack, aws)
        assert result["pushed"] is True, result
        status, body = http("GET", f"{function_env['CG_PUSHGATEWAY_URL'].rstrip('/')}/metrics", timeout=10,
                            headers=pushgateway_auth(get_settings()))
        assert f'cluster_id="{cluster_id}"' in body.decode()
        series = wait_for(lambda: prom_query(f'clustergenie_cluster_metric{{cluster_id="{cluster_id}", type="cpu"}}'),
                          timeout=60, what="Prometheus to scrape the exporter's gauge from the Pushgateway")
        assert float(series[0]["value"][1]) == 91.5
        assert series[0]["metric"]["job"] == "clustergenie_metrics_exporter"  # honor_labels kept the push's job
    finally:
        with app_db.cursor() as cur:
            cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))
        run_exporter(stack, aws)
    _, body = http("GET", f"{function_env['CG_PUSHGATEWAY_URL'].rstrip('/')}/metrics", timeout=10,
                   headers=pushgateway_auth(get_settings()))
    assert f'cluster_id="{cluster_id}"' not in body.decode()  # the PUT replaced the group


def test_job_counters_equal_the_jobs_processed_by_concurrent_workers(stack, aws, app_db, unique):
    n = 30
    cluster_id = f"{unique}-c"
    job_ids = [f"{unique}-j{i}" for i in range(n)]
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO clusters (id, name, region) VALUES (%s, %s, 'nyc1')", (cluster_id, unique))
        cur.executemany("INSERT INTO jobs (id, cluster_id, type, status, trace_id, parameters) "
                        "VALUES (%s, %s, 'diagnose', 'queued', %s, '{}')", [(j, cluster_id, unique) for j in job_ids])
    try:
        before = scrape(stack)
        sqs = aws("sqs")
        for i in range(0, n, 10):  # batches of 10 arrive as they are sent: several worker instances at once
            sqs.send_message_batch(QueueUrl=stack["queues"]["jobs"], Entries=[
                {"Id": str(k), "MessageBody": json.dumps({"job_id": j, "trace_id": unique})}
                for k, j in enumerate(job_ids[i:i + 10])])

        def all_final():
            with app_db.cursor() as cur:
                cur.execute("SELECT COUNT(*) AS n FROM jobs WHERE cluster_id = %s AND status IN ('completed', 'failed')",
                            (cluster_id,))
                return cur.fetchone()["n"] == n

        wait_for(all_final, timeout=120, what=f"{n} jobs to be processed")
        time.sleep(1)  # the last invocation's flush happens as it returns
        after = scrape(stack)
        processed = sum(after.get(key, 0.0) - before.get(key, 0.0) for key in after
                        if key[0] == "clustergenie_job_duration_seconds_count" and ("type", "diagnose") in key[1]
                        and dict(key[1]).get("outcome") in ("completed", "failed"))
        assert processed == n
    finally:
        with app_db.cursor() as cur:
            cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))


def test_a_jobs_logs_show_the_api_the_worker_and_the_event_handler(stack):
    base = stack["api_url"].rstrip("/")
    status, body = http("POST", f"{base}/api/v1/clusters", {"name": "logs-test", "region": "nyc3"})
    assert status == 201, body[:300]
    cluster_id = json.loads(body)["cluster"]["id"]
    try:
        status, body = http("POST", f"{base}/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster_id}},
                            headers={"X-User-ID": f"logs-test-{time.time_ns()}"})
        assert status == 201, body[:300]
        job_id = json.loads(body)["job"]["id"]

        wanted = {"api", "job_worker", "event_handler"}

        def functions_seen():
            status, body = http("GET", f"{base}/api/v1/jobs/{job_id}/logs")
            lines = json.loads(body).get("lines", []) if status == 200 else []
            seen = {line["function"] for line in lines}
            return lines if wanted <= seen else None

        lines = wait_for(functions_seen, timeout=90, interval=2,
                         what=f"the lines of {sorted(wanted)} for the job")
        stamps = [line["ts"] for line in lines]
        assert stamps == sorted(stamps)
        assert all(line["request_id"] for line in lines)
    finally:
        http("DELETE", f"{base}/api/v1/clusters/{cluster_id}")


def dashboard_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "monitoring" / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v.get("allValue", ".*") for v in dashboard.get("templating", {}).get("list", [])}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in variables.items():
                    expr = expr.replace(f"${name}", value)
                out.append((path.stem, panel["title"], expr))
    return out


def test_every_dashboard_panel_returns_data_after_some_load(stack, aws, app_db):
    base = stack["api_url"].rstrip("/")
    # Load: clusters with droplets and samples, jobs, some rate-limit denials, an exporter run.
    status, body = http("POST", f"{base}/api/v1/clusters", {"name": "dash-test", "region": "nyc3"})
    cluster_id = json.loads(body)["cluster"]["id"]
    try:
        http("POST", f"{base}/api/v1/droplets", {"name": "d1", "region": "nyc3", "size": "s-1vcpu-1gb",
                                                 "cluster_id": cluster_id})
        with app_db.cursor() as cur:
            for metric_type, value in (("cpu", 40.0), ("memory", 50.0), ("disk", 20.0)):
                cur.execute("INSERT INTO metrics (cluster_id, type, value, unit, timestamp) VALUES "
                            "(%s, %s, %s, '%%', UTC_TIMESTAMP(6))", (cluster_id, metric_type, value))
        caller = {"X-User-ID": f"dash-test-{time.time_ns()}"}
        for _ in range(2):  # two rounds a scrape apart, so rate() has two samples
            for _ in range(6):  # beyond the jobs_create capacity: some 429s
                http("POST", f"{base}/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster_id}},
                     headers=caller)
            for _ in range(5):
                http("GET", f"{base}/api/v1/clusters/{cluster_id}")
            assert run_exporter(stack, aws)["pushed"] is True
            time.sleep(20)

        def empty_panels():
            return [(d, t, e) for d, t, e in dashboard_queries() if not prom_query(e)]

        missing = empty_panels()
        deadline = time.monotonic() + 60
        while missing and time.monotonic() < deadline:
            time.sleep(5)
            missing = empty_panels()
        assert not missing, "panels without data:\n" + "\n".join(f"{d} / {t}: {e}" for d, t, e in missing)
    finally:
        http("DELETE", f"{base}/api/v1/clusters/{cluster_id}")
