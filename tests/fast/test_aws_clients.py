"""The shared boto3 clients (`chalicelib.aws.client`) keep their connection between calls (issue 16)."""
from __future__ import annotations

import http.server
import json
import threading

import pytest


class _Sqs(http.server.BaseHTTPRequestHandler):
    """Answers every SQS (JSON protocol) call with an empty result, as LocalStack's gateway would: closing the
    connection unless the request asked for keep-alive. Records each request's Connection header and port."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str | None, int]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        keep = (self.headers.get("Connection") or "").lower() == "keep-alive"
        _Sqs.seen.append((self.headers.get("Connection"), self.client_address[1]))
        body = json.dumps({"QueueUrls": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        if not keep:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = not keep

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sqs_endpoint(monkeypatch):  # noqa: ANN001
    from chalicelib import aws

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sqs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _Sqs.seen = []
    aws.client.cache_clear()
    yield _Sqs.seen
    aws.client.cache_clear()
    server.shutdown()
    server.server_close()


def test_a_client_asks_for_keep_alive_and_reuses_its_connection(sqs_endpoint):
    from chalicelib.aws import client

    sqs = client("sqs")
    for _ in range(3):
        sqs.list_queues()
    assert [header for header, _ in sqs_endpoint] == ["keep-alive"] * 3
    assert len({port for _, port in sqs_endpoint}) == 1  # one connection for the three calls
