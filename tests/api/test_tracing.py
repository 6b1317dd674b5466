"""OpenTelemetry traces with an in-memory exporter: a server span per request carrying route,
shape and status, engine work as its child spans, a caller's ``traceparent`` continued; and
when tracing turns on at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support.audio_samples import tone_wav
from voxserve.api.app import create_app
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import OtelSettings, Settings
from voxserve.storage.memory import create_memory_storage
from voxserve.tracing import Tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def traced(settings: Settings) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    engines = [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()]
    app = create_app(
        settings, engines=engines, storage=create_memory_storage(), span_exporter=exporter
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, exporter


def server_span(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name and s.kind is SpanKind.SERVER]
    return span


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_a_request_span_with_engine_work_as_children(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    body = {"input": "Hello there. Goodbye.", "voice_id": "fake-tts:alice"}
    assert client.post("/v1/audio/speech", json=body).status_code == 200
    spans = exporter.get_finished_spans()
    request = server_span(spans, "POST /v1/audio/speech")
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/audio/speech"
    assert request.attributes["voxserve.shape"] == "mistral"
    assert request.attributes["http.response.status_code"] == 200
    engine = children(spans, request)
    assert engine and {s.name for s in engine} == {"engine.tts"}
    assert all(s.attributes and s.attributes["voxserve.engine"] == "fake-tts" for s in engine)


def test_transcription_and_a_callers_trace(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    answer = client.post(
        "/v1/audio/transcriptions",
        data={"model": "fake-stt"},
        files={"file": ("a.wav", tone_wav(2.0), "audio/wav")},
        headers={"traceparent": parent},
    )
    assert answer.status_code == 200, answer.text
    spans = exporter.get_finished_spans()
    request = server_span(spans, "POST /v1/audio/transcriptions")
    assert request.context is not None and f"{request.context.trace_id:032x}" == TRACE_ID
    assert [s.name for s in children(spans, request)] == ["engine.stt"]
    missing = client.get("/v1/audio/voices/nope123")
    assert missing.status_code == 404
    failed = server_span(exporter.get_finished_spans(), "GET /v1/audio/voices/{voice_id}")
    assert failed.attributes is not None and failed.attributes["http.response.status_code"] == 404


def test_tracing_turns_on_with_an_endpoint_only() -> None:
    assert not Tracing.from_settings(OtelSettings(), environ={}).enabled
    on = Tracing.from_settings(OtelSettings(endpoint="http://127.0.0.1:9"), environ={})
    standard = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    by_env = Tracing.from_settings(OtelSettings(), environ=standard)
    assert on.enabled and by_env.enabled
    on.shutdown()
    by_env.shutdown()
