"""The monitoring configuration shipped in monitoring/: Prometheus config, alerting rules (promtool),
Grafana dashboards and provisioning."""
from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import subprocess

import pytest
import yaml

from devstack.config import StackConfig
from devstack.services import Prometheus

ROOT = pathlib.Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool comes with Debian's prometheus package (./dev)")


def promtool(*args: str, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_alerting_rules_are_valid():
    rules = sorted(str(p) for p in (MONITORING / "prometheus" / "rules").glob("*.yml"))
    assert rules
    result = promtool("check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alerting_rules_pass_their_unit_tests():
    tests = sorted(p.name for p in (MONITORING / "prometheus" / "tests").glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *tests, cwd=MONITORING / "prometheus" / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("api_url", [None, "http://127.0.0.1:4566/_aws/execute-api/abc123/api/metrics"])
def test_rendered_prometheus_config_is_valid_and_scrapes_what_it_should(tmp_path, api_url):
    cfg = dataclasses.replace(StackConfig.from_env(), state_dir=tmp_path)  # no stack.json there
    prometheus = Prometheus(cfg)
    prometheus.write_config(api_url)
    result = promtool("check", "config", str(prometheus.config_file))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in yaml.safe_load(prometheus.config_file.read_text())["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    # The Pushgateway wants basic auth (issue 18): the password is read from its file, never in the config.
    assert jobs["pushgateway"]["basic_auth"] == {"username": cfg.PUSHGATEWAY_USER,
                                                 "password_file": str(cfg.pushgateway_password_file)}
    assert cfg.pushgateway_password() not in prometheus.config_file.read_text()
    if api_url is None:
        assert "clustergenie_api" not in jobs
    else:
        assert jobs["clustergenie_api"]["metrics_path"] == "/_aws/execute-api/abc123/api/metrics"
        assert jobs["clustergenie_api"]["static_configs"] == [{"targets": ["127.0.0.1:4566"]}]


DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))


def dashboard_queries(path: pathlib.Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, with template variables set to "All"."""
    dashboard = json.loads(path.read_text())
    variables = {v["name"]: v.get("allValue", ".*") for v in dashboard.get("templating", {}).get("list", [])}
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(f"${name}", value)
            queries.append((panel["title"], expr))
    return queries


def test_dashboards_cover_overview_jobs_rate_limiting_and_clusters_and_use_the_provisioned_datasource():
    assert {p.stem for p in DASHBOARDS} == {"overview", "jobs", "rate-limiting", "clusters"}
    datasources = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    provider = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "dashboards" / "clustergenie.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), (path.name, panel["title"])
    assert len(uids) == len(DASHBOARDS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_is_valid_promql(base_stack, path):  # noqa: ANN001
    import urllib.parse
    import urllib.request

    port = StackConfig.from_env().prometheus_port
    for title, expr in dashboard_queries(path):
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        assert body["status"] == "success", f"{path.name} / {title}: {body.get('error')}"
