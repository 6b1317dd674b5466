"""One middleware that observes every HTTP request and WebSocket session once (method, route
template, shape, status, duration) and feeds what it saw to the metrics (``api.metrics``, unless
``VOXSERVE_METRICS__ENABLED=false``) and to a server span (``api.tracing``, when tracing is
configured).

Requests are labelled by their route template (``/v1/audio/voices/{voice_id}``), never the raw
path, so ids never become labels; a path no route matches is ``unmatched``. A client that goes
away mid-request is status 499.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.api.shapes import ShapeRegistry
from voxserve.api.tracing import describe_span, server_span

UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404)."""
CLIENT_GONE = 499


class ObservationMiddleware:
    """Observes each request once, around everything else (the span covers all the work)."""

    def __init__(self, app: ASGIApp, *, shapes: ShapeRegistry, count: bool) -> None:
        self.app = app
        self.shapes = shapes
        self.count = count
        """Whether to count requests in the metrics (``settings.metrics.enabled``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        tracing = getattr(services, "tracing", None)
        tracing = tracing if tracing is not None and tracing.enabled else None
        watched = self.count or tracing is not None
        if scope["type"] not in ("http", "websocket") or services is None or not watched:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            status = status_of_message(message, status)
            await send(message)

        with server_span(tracing, scope) as span:
            try:
                await self.app(scope, receive, observing_send)
            except asyncio.CancelledError:
                status = CLIENT_GONE
                raise
            finally:
                seconds = time.perf_counter() - started
                method, route = scope.get("method", "WS"), route_template(scope)
                shape = shape_label(self.shapes, scope)
                if self.count:
                    services.metrics.request(method, route, shape, status, seconds)
                if span is not None:
                    describe_span(span, method, route, shape, status)


def shape_label(shapes: ShapeRegistry, scope: Scope) -> str:
    """The shape the request was answered in: the one a shared route chose, else the path's."""
    chosen: Any = scope.get("state", {}).get("shape")
    return str(getattr(chosen, "name", None) or shapes.for_path(scope["path"]).name)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def status_of_message(message: Message, current: int) -> int:
    """The status a response (or a socket's handshake) answers, as its messages show it."""
    kind = message["type"]
    if kind in ("http.response.start", "websocket.http.response.start"):
        return int(message["status"])
    if kind == "websocket.accept":
        return 101
    if kind == "websocket.close" and current == 500:
        return 403  # closed before accepting: the server's denial
    return current
