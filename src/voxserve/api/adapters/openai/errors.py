"""Errors of the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
status (``type``: ``invalid_request_error`` for 4xx, ``authentication_error`` 401,
``rate_limit_error`` 429, ``server_error`` 5xx; ``code`` is voxserve's error code); a stream that
fails after its first event ends with a ``{"type": "error"}`` event."""

from __future__ import annotations

from typing import Any

from voxserve.api.adapters.openai.protocol import (
    ErrorDetail,
    ErrorResponse,
    StreamError,
    StreamErrorDetail,
)
from voxserve.api.shapes import ErrorInfo
from voxserve.api.streaming import sse
from voxserve.errors import VoxError


def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def render_error(err: ErrorInfo) -> dict[str, Any]:
    detail = ErrorDetail(
        message=err.message, type=error_type(err.status), param=err.param, code=err.code
    )
    return ErrorResponse(error=detail).model_dump()


def error_event(exc: VoxError) -> bytes:
    """The ``error`` event (no ``event:`` line) that ends a stream which failed after its first
    event."""
    return sse(
        StreamError(error=StreamErrorDetail(message=exc.message, code=exc.code)).model_dump()
    )
