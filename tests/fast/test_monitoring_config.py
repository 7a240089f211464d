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
    if api_url is None:
        assert "clustergenie_api" not in jobs
    else:
        assert jobs["clustergenie_api"]["metrics_path"] == "/_aws/execute-api/abc123/api/metrics"
        assert jobs["clustergenie_api"]["static_configs"] == [{"targets": ["127.0.0.1:4566"]}]
