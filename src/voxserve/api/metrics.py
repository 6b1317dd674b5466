"""``GET /metrics`` (Prometheus text format) and the middleware that counts every request.

Who may scrape: in keyless loopback mode anyone on this machine (like every route); otherwise an
admin key (``Authorization: Bearer <admin key>``, which Prometheus sends with
``authorization: {credentials: ...}``). ``VOXSERVE_METRICS__ENABLED=false`` removes the route
and the middleware.

Requests are labelled by their route template (``/v1/audio/voices/{voice_id}``), never the raw
path, so ids never become labels; a path no route matches counts as ``unmatched``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.api.deps import CurrentAdmin, MetricsDep
from voxserve.api.shapes import ShapeRegistry
from voxserve.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])

UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404)."""
CLIENT_GONE = 499


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
)
async def metrics(metrics: MetricsDep, _admin: CurrentAdmin) -> Response:
    """This process's metrics in the Prometheus text format (needs an admin key, except in
    keyless loopback mode)."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def shape_label(shapes: ShapeRegistry, scope: Scope) -> str:
    """The shape the request was answered in: the one a shared route chose, else the path's."""
    chosen: Any = scope.get("state", {}).get("shape")
    return str(getattr(chosen, "name", None) or shapes.for_path(scope["path"]).name)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    """Counts each HTTP request and WebSocket session by method, route template, shape and
    status, and observes its duration (a stream's: to its last byte)."""

    def __init__(self, app: ASGIApp, *, shapes: ShapeRegistry) -> None:
        self.app = app
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if scope["type"] not in ("http", "websocket") or services is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            status = status_of_message(message, status)
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        except asyncio.CancelledError:
            status = CLIENT_GONE
            raise
        finally:
            method = scope.get("method", "WS")
            seconds = time.perf_counter() - started
            services.metrics.request(
                method, route_template(scope), shape_label(self.shapes, scope), status, seconds
            )


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
