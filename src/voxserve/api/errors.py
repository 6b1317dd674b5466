"""The error handlers: every error is rendered by the wire shape of its request
(``ShapeRegistry.for_request``: the shape a shared route chose, else the one owning the path).
Never leaks stack traces or internal paths."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxserve.api.shapes import ErrorInfo, ShapeRegistry
from voxserve.errors import Overloaded, ValidationFailed, VoxError

log = logging.getLogger(__name__)


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


def install_error_handlers(app: FastAPI, shapes: ShapeRegistry) -> None:
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
