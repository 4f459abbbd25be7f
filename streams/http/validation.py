"""Request data checked against its model; a refusal names the field, in the API's words.

Pydantic's errors become one 400 message such as "`data.amount` must be a number", the same
shape for bodies, query parameters and path segments.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from streams.http.errors import ApiError
from streams.http.json_safety import join_path

M = TypeVar("M", bound=BaseModel)
# At most this many problems are listed in one answer.
MAX_LISTED = 3

_TYPE_PHRASES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be an array",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "union_tag_invalid": "is not one of the accepted values",
}


def _phrase(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "too_short" and ctx.get("min_length", 1) > 1:
        return f"must have at least {ctx.get('min_length')} items"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {"greater_than": "greater than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}[kind]
        limit = next(iter(ctx.values()), "")
        return f"must be {bound} {limit}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    return _TYPE_PHRASES.get(kind, error["msg"][:1].lower() + error["msg"][1:])


def describe(errors: list[ErrorDetails], where: str = "") -> str:
    """Pydantic's errors as one sentence naming each field path."""
    parts = []
    for error in errors[:MAX_LISTED]:
        # A discriminated union's tag is in the path but not in the body.
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = join_path([*([where] if where else []), *loc])
        phrase = _phrase(error)
        parts.append(f"`{path}` {phrase}" if path else phrase)
    more = len(errors) - MAX_LISTED
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def first_field(errors: list[ErrorDetails], where: str = "") -> str:
    """The path of the first problem (v2 answers name it in `field`)."""
    loc = errors[0]["loc"] if errors else ()
    return join_path([*([where] if where else []), *loc])


def _refused(exc: ValidationError, where: str) -> ApiError:
    errors = exc.errors(include_url=False)
    return ApiError(400, describe(errors, where), field=first_field(errors, where))


def parse_model(model: type[M], data: Any, *, where: str = "") -> M:
    """`data` as `model`, or a 400 ApiError naming every bad field (prefixed with `where`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _refused(exc, where) from exc


def parse_as(adapter: TypeAdapter[Any], data: Any, *, where: str = "") -> Any:
    """Like `parse_model`, for a type that is not a model (a union of models)."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise _refused(exc, where) from exc
