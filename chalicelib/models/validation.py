"""Validating plain data into a pydantic model, with one short message naming each offending field."""
from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from chalicelib.errors import ValidationError

Model = TypeVar("Model", bound=pydantic.BaseModel)


def validate(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(describe_validation_error(exc)) from None


# At most this many problems are described, each field name cut to MAX_FIELD_CHARS: the message never
# grows with the input (a body of a thousand unknown keys gets a short reply, issue 18).
MAX_DESCRIBED_ERRORS = 5
MAX_FIELD_CHARS = 64


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    """A short human message naming each offending field, e.g. "name: must not be empty"."""
    parts = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_DESCRIBED_ERRORS]:
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        if len(field) > MAX_FIELD_CHARS:
            field = field[:MAX_FIELD_CHARS - 1] + "…"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{field}: {msg}")
    if len(errors) > MAX_DESCRIBED_ERRORS:
        parts.append(f"and {len(errors) - MAX_DESCRIBED_ERRORS} more")
    return "; ".join(parts)
