"""A server span per HTTP request and WebSocket session (see ``voxserve.tracing``).

The span continues the caller's trace when the request carries a W3C ``traceparent`` header,
is named ``<method> <route template>`` and carries the route, the shape and the status; the
engine work the request causes shows as its child spans. No keys, no bodies.
"""

from __future__ import annotations

import asyncio

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.api.metrics import CLIENT_GONE, route_template, shape_label, status_of_message
from voxserve.api.shapes import ShapeRegistry

PROPAGATOR = TraceContextTextMapPropagator()


class TracingMiddleware:
    """Wraps each request in a server span when tracing is enabled."""

    def __init__(self, app: ASGIApp, *, shapes: ShapeRegistry) -> None:
        self.app = app
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        tracing = getattr(services, "tracing", None)
        if scope["type"] not in ("http", "websocket") or tracing is None or not tracing.enabled:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope.get("method", "WS")
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            status = status_of_message(message, status)
            await send(message)

        with tracing.tracer.start_as_current_span(
            method, context=PROPAGATOR.extract(headers), kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, observing_send)
            except asyncio.CancelledError:
                status = CLIENT_GONE
                raise
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("voxserve.shape", shape_label(self.shapes, scope))
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
