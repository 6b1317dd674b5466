"""Mistral error wire models: the error response, and the event that ends a failed stream."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class ValidationProblem(BaseModel):
    """One problem of a 422, in FastAPI's ``detail`` shape (the SDK's ``HTTPValidationError``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    loc: list[str | int]
    """Where: ``["body", "input"]``..."""
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every Mistral-shape error (and the default shape's)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "object": "error",
                    "message": "Voice 'nobody' not found.",
                    "type": "invalid_voice",
                    "param": "voice_id",
                    "code": "invalid_voice",
                    "raw_status_code": 404,
                }
            ]
        },
    )

    object: Literal["error"] = "error"
    message: str
    type: str
    """``invalid_request_error``, ``invalid_voice``, ``authentication_error``,
    ``rate_limit_error`` or ``server_error``."""
    param: str | None
    """The field at fault, when one is."""
    code: str
    """voxserve's error code (``validation_failed``, ``not_found``, ``overloaded``...)."""
    raw_status_code: int
    """The HTTP status."""
    detail: list[ValidationProblem] | None = None
    """422 only."""


class StreamErrorDetail(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    message: str
    code: int
    """The HTTP status the error would have answered."""


class StreamError(BaseModel):
    """SSE ``event: error``: ends a stream that failed after its first event."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["error"] = "error"
    error: StreamErrorDetail
