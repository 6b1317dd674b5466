"""Mistral realtime speech over a live server with the fake speech engine (named as a fake),
through ``mistralai``'s ``speak_stream``: pieces spoken as clauses complete, usage on done, an
unknown voice closed with 1008, bad messages answered with ``error`` events. Real engines:
tests/e2e/test_realtime_real.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import websockets
from mistralai.client import Mistral
from mistralai.extra.exceptions import RealtimeSpeechException
from mistralai.extra.realtime import SpeechStreamAudioDelta, SpeechStreamDone, audio_bytes

from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine

FRAGMENTS = ["Hello there, ", "my old ", "friend. How are", " you today?"]
MODEL = "voxtral-mini-tts-latest"


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(), FakeSTTEngine()]


async def fragments(delay: float = 0.0) -> AsyncIterator[str]:
    for text in FRAGMENTS:
        yield text
        await asyncio.sleep(delay)


async def test_speak_stream_gives_pcm_deltas_and_done_with_usage(live_server: LiveServer) -> None:
    client = Mistral(api_key="any", server_url=live_server.url)
    events = [
        e
        async for e in client.audio.realtime_speech.speak_stream(
            fragments(), MODEL, voice_id="fake-tts:alice", streaming_mode="responsive"
        )
    ]
    assert events[0].type == "session.created"
    assert events[0].session.response_format == "pcm"
    deltas = [e for e in events if isinstance(e, SpeechStreamAudioDelta)]
    assert len(deltas) >= 2
    audio = np.frombuffer(b"".join(audio_bytes(d) for d in deltas), "<f4")
    assert len(audio) > 24000 * 0.3 and np.abs(audio).max() > 0.1
    done = events[-1]
    assert isinstance(done, SpeechStreamDone)
    text = "".join(FRAGMENTS)
    # every character of every piece (the spaces where pieces meet are not spoken)
    assert len(text) - 3 <= done.usage.prompt_tokens <= len(text)


async def test_first_audio_comes_before_the_text_ends(live_server: LiveServer) -> None:
    client = Mistral(api_key="any", server_url=live_server.url)
    conn = await client.audio.realtime_speech.connect(MODEL, voice_id="fake-tts:bob")
    events = conn.events()  # one iterator: leaving an ``async for`` early closes the socket
    await conn.send_text("The first clause is here, ")
    while not isinstance(await anext(events), SpeechStreamAudioDelta):
        pass  # audio for the clause before any more text was sent
    await conn.send_text("and the rest.")
    await conn.end()
    while not isinstance(event := await anext(events), SpeechStreamDone):
        assert isinstance(event, SpeechStreamAudioDelta)
    await events.aclose()


async def test_unknown_voice_closes_with_1008_and_the_message(live_server: LiveServer) -> None:
    client = Mistral(api_key="any", server_url=live_server.url)
    with pytest.raises(RealtimeSpeechException) as closed:
        async for _ in client.audio.realtime_speech.speak_stream(
            fragments(), MODEL, voice_id="no-such-voice"
        ):
            pass
    assert closed.value.code == 1008
    assert "no-such-voice" in str(closed.value)


async def test_bad_messages_get_error_events(live_server: LiveServer) -> None:
    url = live_server.url.replace("http", "ws") + f"/v1/audio/speech/realtime?model={MODEL}"
    async with websockets.connect(url) as ws:

        async def event() -> dict[str, Any]:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

        created = await event()
        assert created["type"] == "session.created"
        assert created["session"]["streaming_mode"] == "responsive"
        for bad in (
            "][",
            {"type": "input_text.append"},
            {"type": "session.update", "session": {"response_format": "aac"}},
            {"type": "session.update", "session": {"streaming_mode": "fast"}},
            {"type": "nope"},
        ):
            await ws.send(bad if isinstance(bad, str) else json.dumps(bad))
            error = await event()
            assert error["type"] == "error" and error["error"]["code"] in (400, 422), bad
        await ws.send(json.dumps({"type": "input_text.flush", "text": "Short text."}))
        await ws.send(json.dumps({"type": "input_text.end"}))
        while (got := await event())["type"] != "speech.audio.done":
            assert got["type"] == "speech.audio.delta"
        assert got["usage"]["prompt_tokens"] == len("Short text.")


async def test_unknown_model_is_refused_at_the_handshake(live_server: LiveServer) -> None:
    url = live_server.url.replace("http", "ws") + "/v1/audio/speech/realtime?model=nope"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url)
    assert refused.value.response.status_code == 400
