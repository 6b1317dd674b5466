"""ASGI middleware: request ids with access logs, unexpected errors answered in the app, and the
request body size limit."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.api.errors import from_vox
from voxserve.api.shapes import ErrorInfo, ShapeRegistry
from voxserve.errors import PayloadTooLarge
from voxserve.logs import request_id_var

log = logging.getLogger("voxserve.access")
errors_log = logging.getLogger(__name__)


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID`` in, or a new one), echoes it and logs access."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )
            request_id_var.reset(token)


class UnexpectedErrorMiddleware:
    """Answers an exception nothing else handled with the shape's 500 envelope, inside the app.

    Starlette's own last-resort handler answers too, but then re-raises to the server, which drops
    the connection: a client that reuses it (every SDK keeps connections alive) would see its
    next request reset. An error after the response started still goes up: that response is
    broken and its connection must close.
    """

    def __init__(self, app: ASGIApp, *, shapes: ShapeRegistry) -> None:
        self.app = app
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            errors_log.exception("unhandled error")
            err = ErrorInfo(500, "internal_error", "Internal server error.")
            await self.shapes.response(Request(scope), err)(scope, receive, send)


class BodyLimitMiddleware:
    """Answers 413 for bodies over the limit (``max_upload_bytes`` for multipart uploads,
    ``max_bytes`` for the rest), by Content-Length or while reading."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int, shapes: ShapeRegistry
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.max_upload_bytes if multipart else self.max_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._reject(scope, send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        err = from_vox(_TooLarge(limit))
        body = json.dumps(self.shapes.for_path(scope["path"]).render_error(err)).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(PayloadTooLarge):
    """Raised from ``receive``; the VoxError handler renders it when the app lets it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"Request body is larger than the limit of {max_bytes} bytes.")
