"""OpenAI realtime transcription (``/v1/realtime?intent=transcription``) over a live server with
the fake recogniser (named as a fake), through ``openai``'s realtime client: GA events, beta
input names, commits without VAD, errors. Real weights: tests/e2e/test_realtime_real.py."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import openai
import pytest
import websockets

from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine

TRANSCRIPT = "Hello there. General Kenobi."


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]


def client(server: LiveServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="any")


def quiet_24k(seconds: float) -> str:
    return base64.b64encode(bytes(2 * int(seconds * 24000))).decode()


async def until(conn: Any, kind: str) -> list[Any]:
    events = []
    while True:
        event = await asyncio.wait_for(conn.recv(), 10)
        events.append(event)
        if event.type in (kind, "error"):
            return events


async def test_commit_without_vad_gives_deltas_then_completed(live_server: LiveServer) -> None:
    async with client(live_server).realtime.connect(
        extra_query={"intent": "transcription"}
    ) as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.type == "transcription"
        session = {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "turn_detection": None,
                }
            },
        }
        await conn.send({"type": "session.update", "session": session})  # type: ignore[arg-type]
        updated = (await until(conn, "session.updated"))[-1]
        assert updated.type == "session.updated"
        assert updated.session.audio.input.turn_detection is None
        for _ in range(20):
            await conn.send({"type": "input_audio_buffer.append", "audio": quiet_24k(0.1)})
        await conn.send({"type": "input_audio_buffer.commit"})
        events = await until(conn, "conversation.item.input_audio_transcription.completed")
        kinds = [e.type for e in events]
        assert "input_audio_buffer.committed" in kinds
        assert "conversation.item.input_audio_transcription.delta" in kinds
        completed = events[-1]
        assert completed.type.endswith(".completed")
        assert completed.transcript == TRANSCRIPT
        assert {e.item_id for e in events} == {completed.item_id}
        assert completed.usage.type == "duration" and completed.usage.seconds > 0
        deltas = "".join(e.delta for e in events if e.type.endswith(".delta"))
        assert deltas.split() == TRANSCRIPT.split()


async def test_beta_names_on_input_and_errors_that_keep_the_session(
    live_server: LiveServer,
) -> None:
    url = live_server.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    async with websockets.connect(url) as ws:
        import json

        async def event() -> dict[str, Any]:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

        assert (await event())["type"] == "session.created"
        beta = {
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": None,
        }
        await ws.send(json.dumps({"type": "transcription_session.update", "session": beta}))
        updated = await event()
        assert updated["type"] == "session.updated"
        assert updated["session"]["audio"]["input"]["format"]["type"] == "audio/pcmu"
        for bad in (
            "nope",
            json.dumps({"type": "input_audio_buffer.commit"}),  # nothing to commit
            json.dumps({"type": "input_audio_buffer.append", "audio": "@@@"}),
            json.dumps({"type": "response.create"}),
        ):
            await ws.send(bad)
            error = await event()
            assert error["type"] == "error" and error["error"]["message"], bad
        mulaw = np.full(8000, 0xFF, np.uint8).tobytes()  # 1 s of mu-law silence
        await ws.send(
            json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(mulaw).decode()}
            )
        )
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        while (got := await event())["type"] != (
            "conversation.item.input_audio_transcription.completed"
        ):
            assert got["type"] != "error"
        assert got["transcript"] == TRANSCRIPT


async def test_other_intents_are_refused_at_the_handshake(live_server: LiveServer) -> None:
    url = live_server.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url)
    assert refused.value.response.status_code == 400
    assert b"intent=transcription" in refused.value.response.body
