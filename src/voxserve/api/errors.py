"""Render errors in the envelope of the API shape that owns the request.

Each adapter registers an ``ErrorRenderer`` for its path prefix; routes shared by two shapes (the
OpenAI and Mistral bodies on ``/v1/audio/speech``) pick theirs by setting
``request.state.error_shape``. Never leaks stack traces or internal paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxserve.errors import Overloaded, ValidationFailed, VoxError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorInfo:
    """An error reduced to what every envelope needs."""

    status: int
    code: str
    message: str
    param: str | None = None
    details: Sequence[dict[str, Any]] = ()
    """Validation problems in FastAPI's ``detail`` list shape."""
    retry_after: int | None = None


ErrorRenderer = Callable[[ErrorInfo], dict[str, Any]]


def mistral_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def render_mistral(err: ErrorInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "error",
        "message": err.message,
        "type": "invalid_voice" if err.code == "invalid_voice" else mistral_type(err.status),
        "param": err.param,
        "code": err.code,
        "raw_status_code": err.status,
    }
    if err.status == 422:
        body["detail"] = list(err.details) or [
            {
                "loc": ["body", err.param] if err.param else ["body"],
                "msg": err.message,
                "type": "value_error",
            }
        ]
    return body


def render_openai(err: ErrorInfo) -> dict[str, Any]:
    return {
        "error": {
            "message": err.message,
            "type": mistral_type(err.status),
            "param": err.param,
            "code": err.code,
        }
    }


class ErrorShapes:
    """Path prefix → renderer; the longest matching prefix wins, Mistral's shape by default."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, ErrorRenderer] = {}
        self._by_name: dict[str, ErrorRenderer] = {
            "mistral": render_mistral,
            "openai": render_openai,
        }

    def register(self, name: str, prefix: str, renderer: ErrorRenderer) -> None:
        self._by_prefix[prefix] = renderer
        self._by_name[name] = renderer

    def for_path(self, path: str) -> ErrorRenderer:
        matches = [p for p in self._by_prefix if path == p or path.startswith(p.rstrip("/") + "/")]
        return self._by_prefix[max(matches, key=len)] if matches else render_mistral

    def for_request(self, request: Request) -> ErrorRenderer:
        name = getattr(request.state, "error_shape", None)
        if name in self._by_name:
            return self._by_name[name]
        return self.for_path(request.url.path)

    def response(self, request: Request, err: ErrorInfo) -> JSONResponse:
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
        return JSONResponse(self.for_request(request)(err), status_code=err.status, headers=headers)


def from_vox(exc: VoxError) -> ErrorInfo:
    return ErrorInfo(
        status=exc.status,
        code=exc.code,
        message=exc.message,
        param=exc.field,
        retry_after=exc.retry_after if isinstance(exc, Overloaded) else None,
    )


def from_validation(exc: RequestValidationError) -> ErrorInfo:
    details = []
    for item in exc.errors():
        entry = {k: item[k] for k in ("loc", "msg", "type") if k in item}
        entry["loc"] = list(entry.get("loc", []))
        details.append(entry)
    first = details[0] if details else {"loc": [], "msg": "Invalid request."}
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return ErrorInfo(422, ValidationFailed.code, message, where or None, details)


def install_error_handlers(app: FastAPI, shapes: ErrorShapes) -> None:
    async def on_vox(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VoxError)
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return shapes.response(request, from_vox(exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return shapes.response(request, from_validation(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return shapes.response(request, ErrorInfo(exc.status_code, code, str(exc.detail)))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return shapes.response(request, ErrorInfo(500, "internal_error", "Internal server error."))

    app.add_exception_handler(VoxError, on_vox)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
