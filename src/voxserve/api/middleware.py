"""ASGI middleware: request ids with access logs, unexpected errors answered in the app, the
request body size limit, and the wire rules every request obeys (``api.wire``)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.api.bodies import PARSED_JSON
from voxserve.api.errors import from_vox
from voxserve.api.shapes import (
    SHAPE_HEADER,
    ErrorInfo,
    ShapeRegistry,
    chat_shape,
    sdk_shape,
    speech_shape,
)
from voxserve.api.wire import check_json_body, check_text
from voxserve.errors import PayloadTooLarge, ValidationFailed
from voxserve.logs import request_id_var
from voxserve.offload import run_in_thread

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
        guard = _BodyGuard(limit, receive, send, lambda: self._reject(scope, send, limit))
        try:
            await self.app(scope, guard.receive, guard.send)
        except _TooLarge:  # raised before the app could answer (a middleware reading the body)
            if guard.started:
                raise
            await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        await send_error(self.shapes, scope, send, _TooLarge(limit))


class _BodyGuard:
    """``receive`` that raises once the body passes ``limit``, and ``send`` that answers 413
    in place of whatever the app answers after that (a form parser turns the error into its
    own 400); a response already started just ends."""

    def __init__(
        self, limit: int, receive: Receive, send: Send, reject: Callable[[], Awaitable[None]]
    ) -> None:
        self.limit = limit
        self.seen = 0
        self.started = False
        self.refused = False
        self._receive = receive
        self._send = send
        self._reject = reject

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise _TooLarge(self.limit)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.refused = self.seen > self.limit
            if self.refused:
                await self._reject()
                return
        if not self.refused:
            await self._send(message)


JSON_DETECTORS = {"/v1/audio/speech": speech_shape, "/v1/chat/completions": chat_shape}
"""How the shared JSON routes tell the shapes apart by the body (see ``api.shapes``)."""


def shape_name(scope: Scope, body: bytes) -> str:
    """The shared shape a refused request is answered in: the ``X-Voxserve-Shape`` header's,
    else the one its body shows (when it parses), else the SDK's that sent it."""
    headers = dict(scope["headers"])
    explicit = headers.get(SHAPE_HEADER.lower().encode(), b"").decode("latin-1").strip().lower()
    detect = JSON_DETECTORS.get(scope["path"])
    if not explicit and detect is not None and body:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        explicit = (detect(document) if isinstance(document, dict) else None) or ""
    return explicit or sdk_shape(headers.get(b"user-agent", b"").decode("latin-1")) or ""


async def send_error(
    shapes: ShapeRegistry,
    scope: Scope,
    send: Send,
    exc: PayloadTooLarge | ValidationFailed,
    body: bytes = b"",
) -> None:
    """Answer ``exc`` in the shape of the path (on shared paths, see ``shape_name``)."""
    shape = shapes.for_path(scope["path"])
    if shape is shapes.default_shape:
        shape = shapes.shared.get(shape_name(scope, body), shape)
    content = json.dumps(shape.render_error(from_vox(exc))).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


FORM_TYPES = (b"multipart/", b"application/x-www-form-urlencoded")
"""Bodies the routes read as forms (their fields are checked where they are read)."""


class WireRulesMiddleware:
    """Refuses (422, in the shape's envelope) a path or query with a NUL character, and a JSON
    body that breaks the wire rules of ``api.wire``, before any route sees them.

    Any body that is not a form is read whole (the body limit, outside this, bounds it) and
    handed on unchanged: the shared routes read JSON whatever the content type. A JSON object
    is parsed once: the document goes to the route in the scope (``api.bodies.PARSED_JSON``).
    """

    def __init__(self, app: ASGIApp, *, shapes: ShapeRegistry) -> None:
        self.app = app
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        try:
            check_request_line(scope)
            if _has_json_body(scope):
                body = await _read_body(receive)
                document = await _check_json(body)
                if isinstance(document, dict):
                    scope[PARSED_JSON] = document
                receive = _replay(body, receive)
        except ValidationFailed as exc:
            await send_error(self.shapes, scope, send, exc, body)
            return
        except _ClientGone:
            return
        await self.app(scope, receive, send)


BIG_JSON_BYTES = 256 * 1024
"""JSON bodies from this size on are parsed and checked in a worker thread: a body of many
values (a long array of numbers) costs a Python call per value, and megabytes of them would
hold the event loop for hundreds of milliseconds."""


async def _check_json(body: bytes) -> Any:
    if len(body) < BIG_JSON_BYTES:
        return check_json_body(body)
    return await run_in_thread(check_json_body, body)


def check_request_line(scope: Scope) -> None:
    """Raises ValidationFailed for a NUL character in the path or in a query name or value."""
    check_text(scope["path"], "path")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        check_text(name, "query")
        check_text(value, f"query.{name}")


def _has_json_body(scope: Scope) -> bool:
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return False
    content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
    return not content_type.startswith(FORM_TYPES)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body once, then waits on the client (disconnects)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _ClientGone(Exception):
    """The client went away while its body was read."""


class _TooLarge(PayloadTooLarge):
    """Raised from ``receive``; the VoxError handler renders it when the app lets it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"Request body is larger than the limit of {max_bytes} bytes.")
