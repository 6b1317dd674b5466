"""Realtime transcription forwarded to a remote vLLM realtime server (#10), against a fake of
vLLM's ``/v1/realtime`` dialect (tests/support/fake_vllm_realtime.py, named as a fake): the
mistralai and openai realtime clients on one side, vLLM's events on the other, translated both
ways; a pool of two such servers gives each session one server for its whole length."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import openai
import pytest
from mistralai.client import Mistral
from mistralai.extra.realtime import AudioFormat

from tests.support.fake_vllm_realtime import FakeVLLMRealtimeServer, running
from tests.support.live_server import LiveServer, run_server
from voxserve.engines.fake import FakeTTSEngine
from voxserve.engines.protocol import TranscriptionOptions
from voxserve.engines.registry import discover_engines
from voxserve.engines.remote_stt import RemoteSTTEngine
from voxserve.settings import Settings

SCRIPT = "Hello there general Kenobi"
SECONDS = 2.0


@pytest.fixture
def remote() -> Iterator[FakeVLLMRealtimeServer]:
    with running(FakeVLLMRealtimeServer(SCRIPT)) as server:
        yield server


@pytest.fixture
def server(settings: Settings, remote: FakeVLLMRealtimeServer) -> Iterator[LiveServer]:
    engine = RemoteSTTEngine(remote.base_url, "voxtral-rt", api_key="gpu-key", realtime=True)
    with run_server(settings, [FakeTTSEngine(), engine]) as live:
        yield live


async def chunks(seconds: float, rate: int = 16000) -> AsyncIterator[bytes]:
    """Quiet PCM16 in 100 ms chunks, a little paced (the fake does not listen to it)."""
    for _ in range(round(seconds * 10)):
        yield bytes(2 * rate // 10)
        await asyncio.sleep(0.01)


async def transcribe(url: str) -> list[Any]:
    client = Mistral(api_key="any", server_url=url)
    return [
        e
        async for e in client.audio.realtime.transcribe_stream(
            chunks(SECONDS),
            model="remote-stt",
            audio_format=AudioFormat(encoding="pcm_s16le", sample_rate=16000),
        )
    ]


def deltas(events: list[Any]) -> str:
    return "".join(e.text for e in events if getattr(e, "type", "") == "transcription.text.delta")


async def test_mistral_session_is_forwarded_and_translated_back(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    events = await transcribe(server.url)
    done = events[-1]
    assert done.type == "transcription.done"
    assert done.text == SCRIPT
    assert deltas(events).split() == SCRIPT.split()  # token pieces rejoined into words
    assert [e.text for e in events if getattr(e, "type", "") == "transcription.segment"] == [SCRIPT]
    assert remote.paths == ["/v1/realtime"] and remote.auth == ["Bearer gpu-key"]
    assert remote.models == ["voxtral-rt"] and remote.generations == 1
    assert remote.samples == [int(SECONDS * 16000)]  # every sample, as 16 kHz PCM16


async def stream_without_end(url: str, seconds: float) -> tuple[Any, AsyncIterator[Any]]:
    """A Mistral realtime session that has sent ``seconds`` of audio, and no flush or end."""
    client = Mistral(api_key="any", server_url=url)
    fmt = AudioFormat(encoding="pcm_s16le", sample_rate=16000)
    conn = await client.audio.realtime.connect("remote-stt", audio_format=fmt)
    events = conn.__aiter__()
    async for chunk in chunks(seconds):
        await conn.send_audio(chunk)
    return conn, events


async def test_words_arrive_while_the_audio_still_flows(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    conn, events = await stream_without_end(server.url, 1.5)
    while getattr(event := await asyncio.wait_for(anext(events), 10), "type", "") != (
        "transcription.text.delta"
    ):
        pass
    assert SCRIPT.startswith(event.text.strip())
    await conn.end_audio()
    while getattr(event := await asyncio.wait_for(anext(events), 10), "type", "") != (
        "transcription.done"
    ):
        pass
    assert event.text == SCRIPT
    await conn.close()


async def test_words_the_model_sends_after_the_last_chunk_arrive_before_the_end(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    remote.delay = 1.0  # the model answers each chunk after the client has sent them all
    conn, events = await stream_without_end(server.url, 1.5)
    text = ""  # no more audio and no flush: the words still come
    while len(text.split()) < 3:
        event = await asyncio.wait_for(anext(events), 5)
        if getattr(event, "type", "") == "transcription.text.delta":
            text += event.text
    assert SCRIPT.startswith(text.strip())
    await conn.end_audio()
    async for event in conn:
        if getattr(event, "type", "") == "transcription.done":
            assert event.text == SCRIPT
            break
    await conn.close()


async def test_language_is_forwarded_and_audio_goes_on_chunk_by_chunk(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    client = Mistral(api_key="any", server_url=server.url)
    fmt = AudioFormat(encoding="pcm_s16le", sample_rate=16000)
    conn = await client.audio.realtime.connect("remote-stt", audio_format=fmt, language="fr")
    async for chunk in chunks(0.2):
        await conn.send_audio(chunk)
    # a native streaming model gets the audio as it comes, not once a decode step's worth
    # (0.5 s) has gathered
    for _ in range(100):
        if remote.samples and remote.samples[0] == 3200:
            break
        await asyncio.sleep(0.05)
    assert remote.samples == [3200]
    async for chunk in chunks(0.8):
        await conn.send_audio(chunk)
    await conn.end_audio()
    async for event in conn:
        if getattr(event, "type", "") == "transcription.done":
            break
    await conn.close()
    assert remote.updates == [{"type": "session.update", "model": "voxtral-rt", "language": "fr"}]
    assert sum(remote.appends) == 16000


async def test_context_bias_is_refused_with_an_error_event_and_the_session_goes_on(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    client = Mistral(api_key="any", server_url=server.url)
    fmt = AudioFormat(encoding="pcm_s16le", sample_rate=16000)
    conn = await client.audio.realtime.connect(
        "remote-stt", audio_format=fmt, context_bias=["Kenobi"]
    )
    events = conn.__aiter__()
    while getattr(event := await asyncio.wait_for(anext(events), 10), "type", "") != "error":
        pass
    assert "context_bias" in str(event.error.message) and "hotwords" in str(event.error.message)
    async for chunk in chunks(0.5):
        await conn.send_audio(chunk)
    await conn.end_audio()
    while getattr(event := await asyncio.wait_for(anext(events), 10), "type", "") != (
        "transcription.done"
    ):
        pass
    assert event.text == SCRIPT
    await conn.close()
    assert all("context_bias" not in u for u in remote.updates)


async def test_a_client_that_leaves_closes_the_remote_socket(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    client = Mistral(api_key="any", server_url=server.url)
    conn = await client.audio.realtime.connect("remote-stt")
    async for chunk in chunks(1.0):
        await conn.send_audio(chunk)
    await conn.close()
    for _ in range(100):
        if remote.closed:
            break
        await asyncio.sleep(0.05)
    assert remote.sessions == remote.closed == 1


async def test_a_remote_failure_ends_the_session_with_an_error_event(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    remote.fail_with = "CUDA out of memory"
    events = await transcribe(server.url)
    error = events[-1]
    assert error.type == "error" and error.error.code == 500
    assert "CUDA out of memory" in str(error.error.message)


async def test_openai_realtime_client_gets_the_remote_transcript(
    server: LiveServer, remote: FakeVLLMRealtimeServer
) -> None:
    oai = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="any")
    async with oai.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        assert (await conn.recv()).type == "session.created"
        session = {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe"},
                    "turn_detection": None,
                }
            },
        }
        await conn.send({"type": "session.update", "session": session})  # type: ignore[arg-type]
        async for chunk in chunks(SECONDS, rate=24000):
            audio = base64.b64encode(chunk).decode()
            await conn.send({"type": "input_audio_buffer.append", "audio": audio})
        await conn.send({"type": "input_audio_buffer.commit"})
        kinds = []
        while (event := await asyncio.wait_for(conn.recv(), 10)).type not in (
            "conversation.item.input_audio_transcription.completed",
            "error",
        ):
            kinds.append(event.type)
        assert event.type.endswith(".completed"), event
        assert event.transcript == SCRIPT
        assert "conversation.item.input_audio_transcription.delta" in kinds
    # 24 kHz in, resampled to 16 kHz out (less the resampler's tail, which a commit keeps)
    assert abs(remote.samples[0] - SECONDS * 16000) < 400


async def test_a_pool_gives_each_session_one_server(settings: Settings) -> None:
    with ExitStack() as stack:
        a, b = (stack.enter_context(running(FakeVLLMRealtimeServer(SCRIPT))) for _ in range(2))
        remote = {**settings.remote.model_dump(), "stt_realtime": True}
        remote["stt_url"] = f'["{a.base_url}", "{b.base_url}"]'
        pooled = settings.model_copy(
            update={"remote": type(settings.remote).model_validate(remote)}
        )
        engines = [
            FakeTTSEngine(),
            *(e for e in discover_engines(pooled) if e.name == "remote-stt"),
        ]
        with run_server(pooled, engines) as live:
            for _ in range(4):
                assert (await transcribe(live.url))[-1].text == SCRIPT
        assert a.sessions == b.sessions == 2  # spread over the pool
        assert a.samples == b.samples == [int(SECONDS * 16000)] * 2  # none split between them


def test_an_open_session_counts_against_its_server_until_it_closes(settings: Settings) -> None:
    with ExitStack() as stack:
        a, b = (stack.enter_context(running(FakeVLLMRealtimeServer(SCRIPT))) for _ in range(2))
        remote = {**settings.remote.model_dump(), "stt_realtime": True}
        remote["stt_url"] = f'["{a.base_url}", "{b.base_url}"]'
        pooled = settings.model_copy(
            update={"remote": type(settings.remote).model_validate(remote)}
        )
        engine = next(e for e in discover_engines(pooled) if e.name == "remote-stt")
        pool = engine.pool  # type: ignore[attr-defined]
        streams = [engine.open_stream(TranscriptionOptions()) for _ in range(2)]  # type: ignore[attr-defined]
        for stream in streams:
            stream.step(np.zeros(1600, dtype=np.float32))  # the first audio opens the socket
        assert sorted(backend.in_flight for backend in pool.backends) == [1, 1]
        for stream in streams:
            stream.close()
            stream.close()  # a second close releases nothing more
        assert [backend.in_flight for backend in pool.backends] == [0, 0]
