"""Errors of the Mistral shape: ``{"object": "error", "message", "type", "param", "code",
"raw_status_code"}`` with the HTTP status (422s add FastAPI's ``detail`` list, which the SDK's
``HTTPValidationError`` reads); streams that fail after their first event end with an
``event: error``.

=======================  ======  =============================================
type                     status  meaning
=======================  ======  =============================================
invalid_request_error    4xx     a bad or unsupported request (code says which)
invalid_voice            404     the voice id is unknown (code ``invalid_voice``)
authentication_error     401     missing or wrong API key
rate_limit_error         429     engine busy (see ``Retry-After``)
server_error             5xx     engine failure, no engine configured, a bug
=======================  ======  =============================================
"""

from __future__ import annotations

from typing import Any

from voxserve.api.adapters.mistral.protocol.errors import (
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
    body = ErrorResponse(
        message=err.message,
        type="invalid_voice" if err.code == "invalid_voice" else error_type(err.status),
        param=err.param,
        code=err.code,
        raw_status_code=err.status,
    ).model_dump(exclude={"detail"})
    if err.status == 422:  # FastAPI's entries as they are (they may carry more keys)
        body["detail"] = list(err.details) or [
            {
                "loc": ["body", err.param] if err.param else ["body"],
                "msg": err.message,
                "type": "value_error",
            }
        ]
    return body


def error_event(exc: VoxError) -> bytes:
    """The ``error`` event that ends a stream which failed after its first event; ``code`` is the
    HTTP status the error would have answered."""
    body = StreamError(error=StreamErrorDetail(message=exc.message, code=exc.status))
    return sse(body.model_dump(), "error")
