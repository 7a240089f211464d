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


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    """A short human message naming each offending field, e.g. "name: must not be empty"."""
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)
