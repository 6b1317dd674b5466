"""Errors of the ``/voices`` cloning API: ``{"code": <HTTP status>, "message": "...",
"data": null}`` with that status (0 is reserved for success)."""

from __future__ import annotations

from typing import Any

from voxserve.api.adapters.voice_cloning.protocol import CloningError
from voxserve.api.shapes import ErrorInfo
from voxserve.api.streaming import sse
from voxserve.errors import VoxError


def render_error(err: ErrorInfo) -> dict[str, Any]:
    """The cloning API's error body."""
    return CloningError(code=err.status, message=err.message).model_dump()


def error_event(exc: VoxError) -> bytes:
    """The cloning API has no streams; an event in its envelope, should one ever fail."""
    return sse(CloningError(code=exc.status, message=exc.message).model_dump(), "error")
