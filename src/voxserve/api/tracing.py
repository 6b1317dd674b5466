"""A server span per HTTP request and WebSocket session (see ``voxserve.tracing``), opened and
described by ``api.observation``'s middleware.

The span continues the caller's trace when the request carries a W3C ``traceparent`` header,
is named ``<method> <route template>`` and carries the route, the shape and the status; the
engine work the request causes shows as its child spans. No keys, no bodies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import Scope

from voxserve.tracing import Tracing

PROPAGATOR = TraceContextTextMapPropagator()


@contextmanager
def server_span(tracing: Tracing | None, scope: Scope) -> Iterator[Span | None]:
    """The request's server span, current while the request runs; None without tracing."""
    if tracing is None:
        yield None
        return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    with tracing.tracer.start_as_current_span(
        scope.get("method", "WS"), context=PROPAGATOR.extract(headers), kind=SpanKind.SERVER
    ) as span:
        yield span


def describe_span(span: Span, method: str, route: str, shape: str, status: int) -> None:
    """Name the span for its route and record how the request was answered."""
    span.update_name(f"{method} {route}")
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("voxserve.shape", shape)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
