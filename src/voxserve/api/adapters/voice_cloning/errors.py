"""Errors of the ``/voices`` cloning API: ``{"code": <HTTP status>, "message": "...",
"data": null}`` with that status (0 is reserved for success)."""

from __future__ import annotations

from typing import Any

from voxserve.api.errors import ErrorInfo


def render(err: ErrorInfo) -> dict[str, Any]:
    """The cloning API's error body (registered for ``/voices`` in ``api.app``)."""
    return {"code": err.status, "message": err.message, "data": None}
