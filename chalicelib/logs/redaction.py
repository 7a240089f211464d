"""What a job's log lines show to whoever reads them through the API (issue 18).

The log store keeps every line as shipped (`shipping.shipped`: without INTERNAL_KEYS, which stdout keeps);
`GET /api/v1/jobs/{id}/logs` shows each through `for_viewer`: no
function ARNs or other Lambda internals (anywhere in a line, message text included), and a caller's id only
to that caller. With identity (issue 13) "allowed to see it" may grow (admins); this is the one place.
"""
from __future__ import annotations

import re
from typing import Any

# Keys of a structured line that describe the platform, not the job.
INTERNAL_KEYS = frozenset({"function_arn", "function_request_id", "xray_trace_id", "function_memory_size"})
# Keys whose value names a caller.
CALLER_KEYS = frozenset({"caller", "user_id"})
HIDDEN = "(hidden)"
_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',;]+")


def for_viewer(value: Any, viewer: str) -> Any:
    """`value` (a parsed line, or any part of one) as `viewer` may see it."""
    if isinstance(value, dict):
        shown = {}
        for key, item in value.items():
            if key in INTERNAL_KEYS:
                continue
            if key in CALLER_KEYS and isinstance(item, str) and item != viewer:
                shown[key] = HIDDEN
                continue
            shown[key] = for_viewer(item, viewer)
        return shown
    if isinstance(value, list):
        return [for_viewer(item, viewer) for item in value]
    if isinstance(value, str):
        return _ARN.sub("arn:" + HIDDEN, value)
    return value
