"""The wire format between the executor (LocalStack's Python) and the runner (the function's Python):
length-prefixed JSON frames over a socket pair. Standard library only: both interpreters import it."""
from __future__ import annotations

import json
import socket
import struct

# Printed to stdout after each invocation, so the executor knows every log line of it has been read.
END_MARKER = "\x1eCG-LAMBDA-END "


def send_frame(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict | None:
    """The next frame, or None when the peer has gone."""
    header = recv_exact(sock, 4)
    if header is None:
        return None
    body = recv_exact(sock, struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body)
