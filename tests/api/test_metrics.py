"""``GET /metrics`` over a live server with fake engines (named as fakes): the series after
requests through the official SDKs, bounded labels (route templates, never ids or keys), who may
scrape, and the switch that turns it off."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import httpx
import openai
import pytest
import websockets
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from prometheus_client.parser import text_string_to_metric_families

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from tests.support.web_keys import make_keys
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.engines.manager import EngineManager
from voxserve.engines.registry import discover_engines
from voxserve.metrics import BackendState, Metrics, backend_states
from voxserve.settings import MetricsSettings, Settings

TEXT = "Hello there. This is a test of speech."
SECRET_ID = "voice0123456789secret"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: LiveServer, key: str | None = None) -> tuple[str, Samples]:
    response = server.client(key).get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the series of ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, have), v in samples.items() if n == name and set(labels.items()) <= set(have)
    )


def label_values(samples: Samples) -> set[str]:
    return {v for _, labels in samples for _, v in labels}


@pytest.fixture
def traffic(live_server: LiveServer) -> LiveServer:
    """Speech in both shapes, a transcription, a voice looked up by an unknown id, a 404."""
    mistral = Mistral(server_url=live_server.url)
    oai = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused-on-keyless-loopback")
    mistral.audio.speech.complete(input=TEXT, voice_id="fake-tts:alice", response_format="wav")
    oai.audio.speech.create(model="tts-1", voice="fake-tts:bob", input=TEXT).read()
    oai.audio.transcriptions.create(model="fake-stt", file=("a.wav", tone_wav(2.0)))
    with pytest.raises(SDKError):
        mistral.audio.voices.get(voice_id=SECRET_ID)
    assert live_server.client().get(f"/v1/nothing/{SECRET_ID}").status_code == 404
    return live_server


def test_requests_are_counted_by_route_template_shape_and_status(traffic: LiveServer) -> None:
    text, samples = scrape(traffic)
    requests = "voxserve_http_requests_total"
    speech = {"route": "/v1/audio/speech", "method": "POST", "status": "200"}
    assert value(samples, requests, shape="mistral", **speech) == 1
    assert value(samples, requests, shape="openai", **speech) == 1
    assert value(samples, requests, route="/v1/audio/transcriptions", status="200") == 1
    assert value(samples, requests, route="/v1/audio/voices/{voice_id}", status="404") == 1
    assert value(samples, requests, route="unmatched", status="404") == 1
    latency = "voxserve_http_request_duration_seconds_count"
    assert value(samples, latency, route="/v1/audio/speech") == 2
    assert SECRET_ID not in text  # no id became a label, whatever the route


def test_speech_transcription_engines_and_credits(traffic: LiveServer) -> None:
    _, samples = scrape(traffic)
    assert value(samples, "voxserve_time_to_first_audio_seconds_count", engine="fake-tts") == 2
    assert value(samples, "voxserve_real_time_factor_count", kind="tts", engine="fake-tts") == 2
    assert value(samples, "voxserve_real_time_factor_count", kind="stt", engine="fake-stt") == 1
    for gauge in ("queue_depth", "free_slots", "active", "loaded"):
        assert (f"voxserve_engine_{gauge}", (("engine", "fake-tts"), ("kind", "tts"))) in samples
    assert value(samples, "voxserve_engine_free_slots", engine="fake-tts") >= 1
    assert value(samples, "voxserve_engine_queue_depth", engine="fake-tts") == 0
    usage = traffic.client().get("/v1/usage").json()
    charged = sum(r["credits"] for r in usage["records"] if r["endpoint"] == "speech")
    assert charged == 2 * len(TEXT)
    assert value(samples, "voxserve_credits_spent_total", endpoint="speech") == charged


async def test_open_realtime_sessions_are_a_gauge(live_server: LiveServer) -> None:
    url = live_server.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    async with websockets.connect(url) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
        _, samples = await asyncio.to_thread(scrape, live_server)
        assert value(samples, "voxserve_realtime_sessions") == 1
    for _ in range(100):  # the server sees the close a moment later
        _, samples = await asyncio.to_thread(scrape, live_server)
        if value(samples, "voxserve_realtime_sessions") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(samples, "voxserve_realtime_sessions") == 0
    sessions = value(samples, "voxserve_http_requests_total", method="WS", route="/v1/realtime")
    assert sessions == 1


@pytest.fixture
def keyed(settings: Settings) -> Iterator[tuple[LiveServer, str, str]]:
    (user,) = asyncio.run(make_keys(settings, "alice"))
    (admin,) = asyncio.run(make_keys(settings, "root", admin=True))
    engines = [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()]
    with run_server(settings, engines) as server:  # type: ignore[arg-type]
        yield server, user, admin


def test_a_server_with_keys_needs_an_admin_key_and_leaks_no_key(
    keyed: tuple[LiveServer, str, str],
) -> None:
    server, user, admin = keyed
    audio = server.client(user).post(
        "/v1/audio/speech", json={"input": TEXT, "voice_id": "fake-tts:alice"}
    )
    assert base64.b64decode(audio.json()["audio_data"])
    assert server.client().get("/metrics").status_code == 401
    assert server.client(user).get("/metrics").status_code == 403
    text, samples = scrape(server, admin)
    assert value(samples, "voxserve_http_requests_total", route="/metrics", status="401") == 1
    assert value(samples, "voxserve_http_requests_total", route="/metrics", status="403") == 1
    assert user not in text and admin not in text
    assert not any(user[:12] in v or admin[:12] in v for v in label_values(samples))


def test_metrics_can_be_turned_off(settings: Settings) -> None:
    off = settings.model_copy(update={"metrics": MetricsSettings(enabled=False)})
    with run_server(off, [FakeTTSEngine()]) as server:  # type: ignore[list-item]
        assert server.client().get("/metrics").status_code == 404
        assert server.client().get("/health").status_code == 200


def test_an_unstarted_app_passes_requests_through() -> None:
    # Before the lifespan has built the services, the middleware has nothing to record into.
    from voxserve.api.app import create_app

    app = create_app(Settings(host="127.0.0.1", port=0))
    transport = httpx.ASGITransport(app=app)

    async def get() -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return (await c.get("/health")).status_code

    assert asyncio.run(get()) == 200


def test_a_pool_registers_its_backend_gauges() -> None:
    metrics = Metrics()
    backends = [
        BackendState("tts", "gpu-1:8000", in_flight=3, capacity=4, healthy=True),
        BackendState("tts", "gpu-2:8000", in_flight=0, capacity=4, healthy=False),
    ]
    metrics.register_backends(lambda: backends)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    one = (("backend", "gpu-1:8000"), ("kind", "tts"))
    two = (("backend", "gpu-2:8000"), ("kind", "tts"))
    assert samples[("voxserve_backend_in_flight", one)] == 3
    assert samples[("voxserve_backend_free_slots", one)] == 1
    assert samples[("voxserve_backend_healthy", two)] == 0


def test_a_configured_pool_shows_its_servers_by_host_and_port_only(settings: Settings) -> None:
    urls = ["http://user:s3cret@gpu-1:8001/v1", "http://gpu-2/v1"]
    pooled = settings.model_copy(
        update={"remote": type(settings.remote).model_validate({"stt_url": urls})}
    )
    manager = EngineManager(
        [e for e in discover_engines(pooled) if e.name == "remote-stt"], pooled.engines
    )
    states = backend_states(manager.backend_status())
    assert [(s.kind, s.backend, s.in_flight) for s in states] == [
        ("stt", "gpu-1:8001", 0),
        ("stt", "gpu-2", 0),
    ]
    assert all(s.capacity == 4 and s.healthy for s in states)
