"""JSON bodies of routes shared by two API shapes: the route reads the body, picks the shape, then
that shape validates it with its model (errors located under ``body`` as FastAPI's own are);
``inline_schema`` documents models whose nested names clash (the ``oneOf`` bodies and answers)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

PARSED_JSON = "voxserve.parsed_json"
"""Scope key of the JSON object ``WireRulesMiddleware`` parsed (checking the wire rules), so the
route does not parse megabytes again."""


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object (the one the wire rules parsed, when they did).

    Raises:
        RequestValidationError: not JSON, or not an object.
    """
    parsed: dict[str, Any] | None = request.scope.get(PARSED_JSON)
    if parsed is not None:
        return parsed
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestValidationError(
            [{"loc": ["body"], "msg": "The body is not valid JSON.", "type": "json_invalid"}]
        ) from None
    if not isinstance(body, dict):
        raise RequestValidationError(
            [{"loc": ["body"], "msg": "The body must be a JSON object.", "type": "dict_type"}]
        )
    return body


def parse(model: type[M], body: dict[str, Any]) -> M:
    """Validate ``body`` as ``model``.

    Raises:
        RequestValidationError: the model's errors, located under ``body``.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined: the two bodies' nested models share
    names, so they cannot both live in ``components/schemas``."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
