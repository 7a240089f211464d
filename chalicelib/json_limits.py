"""Decoding a request body as JSON within bounds: nesting depth and key count are checked on the raw
text before the parser runs, so a hostile body can neither exhaust the parser's recursion nor build a
huge object (issue 18). The one way the edge turns bytes into JSON.
"""
from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.errors import ValidationError

# A JSON string literal (escapes included): what lies inside one is never structure.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STRUCTURE = re.compile(r"[\[\]{}:]")


def structure_of(text: str) -> tuple[int, int]:
    """(deepest nesting, number of object keys) of a JSON text, without parsing it.

    Outside string literals every `:` separates a key from its value, and brackets nest; a malformed
    text gives some answer, and the parser then rejects it."""
    depth = deepest = keys = 0
    for token in _STRUCTURE.findall(_STRING.sub('""', text)):
        if token == ":":
            keys += 1
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest, keys


def decode_json(raw: bytes | str, *, max_depth: int, max_keys: int) -> Any:
    """The JSON value of `raw`; ValidationError when it is not JSON or exceeds the bounds."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise ValidationError("request body is not valid JSON") from None
    depth, keys = structure_of(text)
    if depth > max_depth:
        raise ValidationError(f"request body nests deeper than {max_depth} levels")
    if keys > max_keys:
        raise ValidationError(f"request body has more than {max_keys} keys")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValidationError("request body is not valid JSON") from None
