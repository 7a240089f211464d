"""Redis commands encoded by us, for the two hot paths that send a fixed-shape EVALSHA (the rate-limit
decision and the metrics flush). redis-py's generic command path (argument encoding, retry and
instrumentation wrappers) costs more client time than Redis spends on those scripts
(docs/benchmarks.md); the encoded bytes go straight to a connection's `send_packed_command`."""
from __future__ import annotations


def pack_command(*parts: str | bytes) -> bytes:
    """A command in the Redis wire protocol (RESP): an array of bulk strings."""
    encoded = [part if isinstance(part, bytes) else part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(e), e) for e in encoded)
