"""Errors of the Mistral shape's SSE streams (speech and transcription)."""

from __future__ import annotations

from voxserve.api.streaming import sse
from voxserve.errors import VoxError


def error_event(exc: VoxError) -> bytes:
    """The ``error`` event that ends a stream which failed after its first event; ``code`` is the
    HTTP status the error would have answered."""
    return sse({"type": "error", "error": {"message": exc.message, "code": exc.status}}, "error")
