"""OpenTelemetry traces: a span per request (``api.tracing``) with child spans for engine work
(``engines.manager``), sent over OTLP/HTTP when an endpoint is configured.

The endpoint is ``VOXSERVE_OTEL__ENDPOINT`` (a collector's base URL; spans go to
``<endpoint>/v1/traces``), else the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT`` that the exporter reads itself. Without one, the tracer is
OpenTelemetry's no-op tracer: nothing is recorded or sent.

One ``Tracing`` per set of services, with a provider of its own (never the process-wide global
one), so tests hand in an in-memory exporter and apps in one process never mix their spans.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanProcessor,
)

import voxserve
from voxserve.settings import OtelSettings

STANDARD_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


__all__ = ["SpanExporter", "Tracing"]


class Tracing:
    """The tracer the services and the request middleware use, and its provider (if any)."""

    def __init__(self, tracer: trace.Tracer, provider: TracerProvider | None = None) -> None:
        self.tracer = tracer
        self._provider = provider

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(trace.NoOpTracer())

    @classmethod
    def from_settings(
        cls,
        settings: OtelSettings,
        exporter: SpanExporter | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Tracing:
        """Tracing to ``exporter`` (spans exported one by one, for tests), else to the
        configured OTLP endpoint (batched), else disabled."""
        processor: SpanProcessor
        if exporter is not None:
            processor = SimpleSpanProcessor(exporter)
        elif settings.endpoint or any(environ.get(name) for name in STANDARD_ENDPOINTS):
            processor = BatchSpanProcessor(_otlp_exporter(settings.endpoint))
        else:
            return cls.disabled()
        resource = Resource.create(
            {"service.name": settings.service_name, "service.version": voxserve.__version__}
        )
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(processor)
        return cls(provider.get_tracer("voxserve", voxserve.__version__), provider)

    def shutdown(self) -> None:
        """Send what is pending and stop (blocking: at most the exporter's timeout)."""
        if self._provider is not None:
            self._provider.shutdown()


def _otlp_exporter(endpoint: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if endpoint is None:
        return OTLPSpanExporter()  # reads the standard OTEL_EXPORTER_OTLP_* variables
    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
