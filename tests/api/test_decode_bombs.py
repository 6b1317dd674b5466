"""Decode bombs (#14 item 2): a few MB of FLAC holding hours of silence. Lengths come from the
container (or its packets), voice samples decode only their maximum length, transcriptions over
the limit answer 413 before decoding, and decoding has its own bounded pool: when it is full new
audio gets 429 with Retry-After and ``/ready`` says ``saturated``, while other requests go on."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral

from tests.support.audio_samples import tone_wav
from tests.support.decode_bombs import silent_flac
from tests.support.live_server import LiveServer, run_server
from voxserve.api.app import create_app
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings
from voxserve.storage.memory import create_memory_storage

BOMB_HOURS = 10


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = silent_flac(BOMB_HOURS)
    assert 5_000_000 < len(data) < 8_000_000  # the 6.8 MB class of the report
    return data


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    engines = [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()]
    with run_server(settings, engines) as live:  # type: ignore[arg-type]
        yield live


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def voice_create(client: httpx.AsyncClient, sample: bytes) -> httpx.Response:
    body = {"name": "bomb", "sample_audio": b64(sample), "sample_filename": "bomb.flac"}
    return await client.post("/v1/audio/voices", json=body)


async def transcription(client: httpx.AsyncClient, audio: bytes) -> httpx.Response:
    files = {"file": ("bomb.flac", audio, "audio/flac")}
    return await client.post("/v1/audio/transcriptions", files=files, data={"model": "fake-stt"})


async def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await request
    return response, time.perf_counter() - started


def test_six_bombs_in_flight_leave_other_requests_fast(server: LiveServer, bomb: bytes) -> None:
    uploaded = httpx.post(f"{server.url}/v1/files", files={"file": ("five.bin", b"12345")})
    file_id = uploaded.json()["id"]

    async def run() -> tuple[list[httpx.Response], list[tuple[httpx.Response, float]]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            bombs = [asyncio.create_task(voice_create(client, bomb)) for _ in range(3)]
            bombs += [asyncio.create_task(transcription(client, bomb)) for _ in range(3)]
            await asyncio.sleep(0.2)  # the bombs are being received and decoded
            speech = {"input": "Hello.", "voice_id": "fake-tts:alice", "response_format": "wav"}
            others = await asyncio.gather(
                timed(client.post("/v1/audio/speech", json=speech)),
                timed(client.get(f"/v1/files/{file_id}/content")),
            )
            return list(await asyncio.gather(*bombs)), list(others)

    bombs, others = asyncio.run(run())
    (spoken, speech_seconds), (downloaded, download_seconds) = others
    assert spoken.status_code == 200 and downloaded.content == b"12345"
    assert speech_seconds < 5 and download_seconds < 5
    # Only the first 30 s of each sample were decoded: silent; the transcriptions' 10 h were
    # read from the header and refused before a sample was decoded.
    assert [r.status_code for r in bombs] == [422] * 3 + [413] * 3
    assert all("silent" in r.text for r in bombs[:3])
    assert all("limit is 14400 s" in r.text for r in bombs[3:])


def test_a_transcription_over_the_limit_is_413_through_the_sdk(
    server: LiveServer, bomb: bytes
) -> None:
    mistral = Mistral(server_url=server.url)
    started = time.perf_counter()
    with pytest.raises(Exception, match="14400") as refused:
        mistral.audio.transcriptions.complete(
            model="fake-stt", file={"file_name": "bomb.flac", "content": bomb}
        )
    assert getattr(refused.value, "status_code", None) == 413
    assert time.perf_counter() - started < 10


@asynccontextmanager
async def in_process(tmp_path: Path, **decode: int) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        host="127.0.0.1",
        port=0,
        decode=decode,  # type: ignore[arg-type]
    )
    app = create_app(settings, engines=[FakeTTSEngine()], storage=create_memory_storage())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield app.state.services, client


async def test_a_full_decode_pool_answers_429_and_ready_says_saturated(tmp_path: Path) -> None:
    async with in_process(tmp_path, workers=1, queue=0, retry_after_seconds=3) as (
        services,
        client,
    ):
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["decoding"] == {
            "active": 0,
            "waiting": 0,
            "limit": 1,
            "queue": 0,
            "saturated": False,
        }
        gate = threading.Event()
        busy = asyncio.create_task(services.decoding.run(gate.wait))  # a decode that lasts
        await asyncio.sleep(0.05)
        try:
            refused = await voice_create(client, tone_wav(3.0))
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "3"
            assert "busy decoding audio" in refused.text
            saturated = await client.get("/ready")
            assert saturated.status_code == 503
            assert saturated.json()["status"] == "saturated"
            assert saturated.json()["decoding"]["saturated"] is True
            assert (await client.get("/health")).status_code == 200
        finally:
            gate.set()
            await busy
        assert (await voice_create(client, tone_wav(3.0))).status_code == 200
        assert (await client.get("/ready")).json()["status"] == "ready"
