"""/api/v1/hello: the original's smoke check."""
from __future__ import annotations

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import ok
from chalicelib.api.routing import current_request
from chalicelib.http import parse_body
from chalicelib.models.control_plane import HelloRequest, HelloResponse

document(Operation("POST", "/api/v1/hello", "Say hello (the original's smoke check)", "meta", HelloResponse,
                   body=HelloRequest))


def hello():
    request = parse_body(current_request(), HelloRequest)
    return ok(HelloResponse(message=f"Hello, {request.name} from ClusterGenie!"))
