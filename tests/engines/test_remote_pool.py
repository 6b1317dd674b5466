"""Pools of remote engines against several fake OpenAI-compatible servers, one of which dies in
the middle of a test and comes back; and the openai SDK against voxserve with a pool of two."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import numpy as np
import openai
import pytest

from tests.support.live_server import run_server
from tests.support.openai_stub_server import OpenAIStubServer
from voxserve.audio.types import AudioClip
from voxserve.engines.protocol import SynthesisRequest, TranscriptionOptions
from voxserve.engines.registry import discover_engines
from voxserve.engines.remote_pool import PooledSTTEngine, PooledTTSEngine
from voxserve.settings import Settings

SPEECH = "/v1/audio/speech"
TRANSCRIBE = "/v1/audio/transcriptions"


@pytest.fixture
def fakes() -> Iterator[list[OpenAIStubServer]]:
    """Three fake OpenAI-compatible servers."""
    with ExitStack() as stack:
        yield [stack.enter_context(OpenAIStubServer(voices=["alice"])) for _ in range(3)]


def _settings(settings: Settings, **remote: object) -> Settings:
    # Through validation, as the environment would give them.
    merged = {**settings.remote.model_dump(), **remote}
    return settings.model_copy(update={"remote": type(settings.remote).model_validate(merged)})


def _engine(settings: Settings, name: str) -> object:
    return next(e for e in discover_engines(settings) if e.name == name)


def _clip(seconds: float = 1.0) -> AudioClip:
    t = np.arange(round(seconds * 16000), dtype=np.float32) / 16000
    return AudioClip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)


def _speak(engine: PooledTTSEngine, text: str = "Hello there.", state: bytes | None = None) -> int:
    return sum(len(c) for c in engine.synthesize(SynthesisRequest(text, voice_state=state)))


def test_settings_take_a_single_url_or_a_json_list(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_REMOTE__STT_URL", "http://gpu:8001/v1")
    monkeypatch.setenv(
        "VOXSERVE_REMOTE__TTS_URL",
        '["http://gpu1:8000/v1", {"url": "http://gpu2:8000/v1", "capacity": 8, "api_key": "k2"}]',
    )
    remote = Settings().remote
    assert remote.stt_url == "http://gpu:8001/v1" and remote.backends("stt") is None
    pool = remote.backends("tts")
    assert pool is not None
    assert [(b.url, b.capacity, b.api_key) for b in pool] == [
        ("http://gpu1:8000/v1", 4, None),
        ("http://gpu2:8000/v1", 8, "k2"),
    ]
    with pytest.raises(ValueError, match="neither a URL"):
        type(remote).model_validate({"chat_url": "[not json"})
    with pytest.raises(ValueError, match="at least one"):
        type(remote).model_validate({"chat_url": []})


def test_a_pool_spreads_speech_and_survives_a_backend_dying(
    settings: Settings, fakes: list[OpenAIStubServer]
) -> None:
    engine = _engine(_settings(settings, tts_url=[f.base_url for f in fakes]), "remote-tts")
    assert isinstance(engine, PooledTTSEngine)
    assert engine.capabilities().max_concurrency == 12
    engine.load()
    assert [v.id for v in engine.capabilities().voices] == ["alice"]
    for _ in range(3):
        assert _speak(engine) > 0
    assert [f.posts(SPEECH) for f in fakes] == [1, 1, 1]

    fakes[1].kill()
    for _ in range(6):
        assert _speak(engine) > 0  # the dead one is found out and left, nothing fails
    assert fakes[1].posts(SPEECH) == 1
    assert fakes[0].posts(SPEECH) + fakes[2].posts(SPEECH) == 8
    engine.check_health()
    assert [b["healthy"] for b in engine.backend_status()] == [True, False, True]

    fakes[1].revive()
    engine.check_health()
    assert all(b.healthy for b in engine.pool.backends)
    for _ in range(3):
        assert _speak(engine) > 0
    assert fakes[1].posts(SPEECH) == 2  # back in the rotation
    engine.unload()


def test_requests_in_flight_spread_over_the_backends_by_capacity(
    settings: Settings, fakes: list[OpenAIStubServer]
) -> None:
    for fake in fakes[:2]:
        fake.delay_seconds = 0.8  # all four in flight at once, even on a loaded machine
    urls = [{"url": fakes[0].base_url, "capacity": 1}, {"url": fakes[1].base_url, "capacity": 3}]
    engine = _engine(_settings(settings, stt_url=urls), "remote-stt")
    assert isinstance(engine, PooledSTTEngine)
    with ThreadPoolExecutor(4) as threads:
        done = list(
            threads.map(lambda _: engine.transcribe(_clip(), TranscriptionOptions()), range(4))
        )
    assert len(done) == 4
    assert [fakes[0].posts(TRANSCRIBE), fakes[1].posts(TRANSCRIBE)] == [1, 3]


def test_a_cloned_voice_goes_back_to_the_backend_that_spoke_it(
    settings: Settings, fakes: list[OpenAIStubServer]
) -> None:
    engine = _engine(
        _settings(settings, tts_url=[f.base_url for f in fakes[:2]], tts_cloning=True),
        "remote-tts",
    )
    assert isinstance(engine, PooledTTSEngine)
    state = engine.clone_voice(AudioClip(_clip(2.0).samples, 16000))
    for _ in range(3):
        _speak(engine, state=state)
        _speak(engine)  # preset speech keeps taking turns
    cloned = [
        sum(1 for r in f.requests if r.path == SPEECH and "ref_audio" in r.json) for f in fakes[:2]
    ]
    assert sorted(cloned) == [0, 3]
    assert sum(f.posts(SPEECH) for f in fakes[:2]) == 6


def test_a_realtime_session_stays_on_its_backend_and_moves_only_when_it_dies(
    settings: Settings, fakes: list[OpenAIStubServer]
) -> None:
    engine = _engine(_settings(settings, stt_url=[f.base_url for f in fakes]), "remote-stt")
    assert isinstance(engine, PooledSTTEngine)
    session = engine.open_stream(TranscriptionOptions(language="en"))
    other = engine.open_stream(TranscriptionOptions(language="en"))
    second = _clip(1.0).samples
    for _ in range(3):
        session.step(second)
        other.step(second)
    counts = [f.posts(TRANSCRIBE) for f in fakes]
    assert sorted(counts) == [0, 3, 3]  # two sessions, one backend each
    home = counts.index(3)
    fakes[home].kill()
    session.step(second)
    session.commit(second)
    moved = [f.posts(TRANSCRIBE) for f in fakes]
    assert moved[home] == 3 and sum(moved) == 8


def _tone_wav(seconds: float = 1.0) -> bytes:
    pcm = (_clip(seconds).samples * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    return buffer.getvalue()


def test_openai_sdk_against_a_pool_of_two_fakes_one_dying_and_coming_back(
    settings: Settings, fakes: list[OpenAIStubServer]
) -> None:
    a, b = fakes[:2]
    pooled = _settings(
        settings,
        tts_url=[a.base_url, {"url": b.base_url, "capacity": 2}],
        tts_voices=["alice"],
        stt_url=f'["{a.base_url}", "{b.base_url}"]',
        health_interval_seconds=0.1,
    )
    with run_server(pooled) as server:
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)

        def speak() -> None:
            audio = oai.audio.speech.create(
                model="tts-1", voice="remote-tts:alice", input="Hello.", response_format="pcm"
            )
            assert len(audio.content) > 1000

        def transcribe() -> None:
            result = oai.audio.transcriptions.create(
                model="remote-stt", file=("a.wav", _tone_wav())
            )
            assert result.text.startswith("Transcribed by")

        for _ in range(4):
            speak()
            transcribe()
        assert a.posts(SPEECH) and b.posts(SPEECH)
        assert a.posts(TRANSCRIBE) == b.posts(TRANSCRIBE) == 2

        b.kill()
        for _ in range(4):
            speak()
            transcribe()
        assert a.posts(TRANSCRIBE) == 6

        b.revive()
        deadline = time.monotonic() + 10
        while b.posts(TRANSCRIBE) == 2:  # the health check brings it back within 0.1 s
            assert time.monotonic() < deadline, "the revived backend never came back"
            transcribe()
        speak()


def test_a_pool_short_of_healthy_servers_answers_429_with_retry_after(
    settings: Settings, fakes: list[OpenAIStubServer]
) -> None:
    a, b = fakes[:2]
    a.delay_seconds = 1.5
    pooled = _settings(
        settings,
        stt_url=[{"url": a.base_url, "capacity": 1}, {"url": b.base_url, "capacity": 1}],
        health_interval_seconds=0.05,
    )
    with run_server(pooled) as server, server.client() as client:
        b.kill()
        time.sleep(0.2)  # health checks take b out (a request that found it dead would too)

        def transcribe() -> httpx.Response:
            files = {"file": ("a.wav", _tone_wav(), "audio/wav")}
            return client.post(
                "/v1/audio/transcriptions", data={"model": "remote-stt"}, files=files
            )

        with ThreadPoolExecutor(1) as thread:
            first = thread.submit(transcribe)
            deadline = time.monotonic() + 10
            while not a.posts(TRANSCRIBE):  # the first holds a's only slot
                assert time.monotonic() < deadline, "the first request never reached a"
                time.sleep(0.01)
            refused = transcribe()
            assert first.result().status_code == 200
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == str(pooled.engines.retry_after_seconds)
        assert a.posts(TRANSCRIBE) == 1
