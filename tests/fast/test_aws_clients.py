"""The app's AWS clients keep their HTTP connection between calls (chalicelib/aws.py).

The server here is a small HTTP/1.1 server on 127.0.0.1 that answers GetQueueUrl and behaves as LocalStack's
gateway does (`localstack/aws/handlers/legacy.py`): it answers `Connection: close` and closes the connection
unless the request asked for `Connection: keep-alive`. A real LocalStack is not needed to pin down what our
client sends; the LocalStack tier checks the same against the running LocalStack
(tests/localstack/test_triggers.py).
"""
from __future__ import annotations

import http.server
import json
import threading

import botocore.session
import pytest

from chalicelib import aws


class LocalStackLikeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[int] = []  # the client's port, once per connection accepted
    asked: list[str | None] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(self.client_address[1])

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        asked = self.headers.get("Connection")
        self.asked.append(asked)
        body = json.dumps({"QueueUrl": "http://127.0.0.1/000000000000/jobs"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        if (asked or "").lower() != "keep-alive":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass


@pytest.fixture
def localstack_like(monkeypatch):
    LocalStackLikeHandler.connections, LocalStackLikeHandler.asked = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LocalStackLikeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    yield url
    aws.client.cache_clear()
    server.shutdown()
    server.server_close()


def test_the_apps_clients_ask_for_keep_alive_and_reuse_one_connection(localstack_like):
    sqs = aws.client("sqs")
    for _ in range(3):
        assert sqs.get_queue_url(QueueName="jobs")["QueueUrl"].endswith("/jobs")
    assert LocalStackLikeHandler.asked == ["keep-alive"] * 3
    assert len(LocalStackLikeHandler.connections) == 1


def test_a_client_without_it_pays_a_connection_per_call(localstack_like):
    # What every call cost before: the server closes, botocore reconnects. This is what the test above rules out.
    plain = botocore.session.get_session().create_client("sqs")
    for _ in range(3):
        plain.get_queue_url(QueueName="jobs")
    assert LocalStackLikeHandler.asked == [None] * 3
    assert len(LocalStackLikeHandler.connections) == 3


def test_the_msk_bridges_lambda_client_keeps_its_connection_too(localstack_like):
    # The bridge invokes a function per batch it delivers (localstack/msk_bridge/bridge.py, its own boto3 client).
    import threading

    from devstack.services import load_bridge_module

    bridge = load_bridge_module()
    mapping = bridge.Mapping.from_dict({"topic": "cluster-events", "function_name": "f", "consumer_group": "g",
                                        "batch_size": 10, "maximum_batching_window_seconds": 0.2})
    worker = bridge.MappingWorker(mapping, "127.0.0.1:1", "us-east-1", threading.Event())
    for _ in range(3):
        response = worker.lambda_client.invoke(FunctionName="f", Payload=b"{}")
        assert response["StatusCode"] == 200 and response["Payload"].read()  # read, as the bridge does
    assert LocalStackLikeHandler.asked == ["keep-alive"] * 3
    assert len(LocalStackLikeHandler.connections) == 1


def test_keep_alive_is_an_unsigned_header():
    # Added after signing: the signature covers the same headers with or without it.
    signed = []
    sqs = aws.keep_connections_alive(botocore.session.get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", aws_access_key_id="test",
        aws_secret_access_key="test"))
    sqs.meta.events.register_last("before-send", lambda request, **_: signed.append(dict(request.headers)) or _answer())
    sqs.get_queue_url(QueueName="jobs")
    [headers] = signed
    assert headers["Connection"] == "keep-alive"
    authorization = headers["Authorization"].decode() if isinstance(headers["Authorization"], bytes) else headers["Authorization"]
    assert "connection" not in authorization.split("SignedHeaders=")[1].split(",")[0].split(";")


def _answer():
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_):  # noqa: ANN003
            yield json.dumps({"QueueUrl": "http://127.0.0.1/000000000000/jobs"}).encode()

    return AWSResponse("http://127.0.0.1:9", 200, {"Content-Type": "application/x-amz-json-1.0"}, Raw())
