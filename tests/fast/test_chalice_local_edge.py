"""`chalice local` itself (the development server, not the in-process test client): unknown paths and
methods are v1 404/405s and preflights are answered with CORS headers, as through API Gateway."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from private_redis import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="module")
def local_server():
    port = free_port()
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "chalice"), "local", "--host", "127.0.0.1",
                             "--port", str(port), "--no-autoreload"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            call(base, "OPTIONS", "/api/v1/clusters")
            break
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None:
                pytest.fail(f"chalice local exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chalice local did not start within 60 s")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def call(base: str, method: str, path: str, headers: dict[str, str] | None = None):  # noqa: ANN201
    request = urllib.request.Request(base + path, method=method, headers={"Origin": ORIGIN, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_chalice_local_answers_404_405_and_preflights_like_api_gateway(local_server):
    status, headers, body = call(local_server, "GET", "/api/v1/no/such/route")
    assert status == 404 and json.loads(body) == {"error": "no route GET /api/v1/no/such/route"}
    assert headers["access-control-allow-origin"] == ORIGIN
    status, headers, body = call(local_server, "DELETE", "/api/v1/clusters")
    assert status == 405 and "DELETE" in json.loads(body)["error"] and "GET" in headers["allow"]
    status, headers, _ = call(local_server, "OPTIONS", "/api/v1/jobs/job-x",
                              {"Access-Control-Request-Method": "GET"})
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    assert "GET" in headers["access-control-allow-methods"]
