"""Mistral realtime transcription over a live server with the fake recogniser (named as a fake):
the wire through ``mistralai``'s realtime client, every bad input, handshake refusals, limits.
Recognition quality with real weights: tests/e2e/test_realtime_real.py (marker ``model``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import websockets
from mistralai.client import Mistral
from mistralai.extra.exceptions import RealtimeTranscriptionException
from mistralai.extra.realtime import (
    AudioFormat,
    RealtimeTranscriptionSessionCreated,
)

from tests.support.live_server import LiveServer, run_server
from voxserve.bootstrap import open_services
from voxserve.core.auth import NewKey
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import RealtimeSettings, Settings
from voxserve.storage.memory import create_memory_storage
from voxserve.storage.protocol import Storage

TRANSCRIPT = "Hello there. General Kenobi."
PATH = "/v1/audio/transcriptions/realtime"


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]


def ws_url(server: LiveServer, model: str = "voxtral-mini-transcribe-realtime-2602") -> str:
    return server.url.replace("http", "ws") + f"{PATH}?model={model}"


def loud(seconds: float) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 0.5 * 32767).astype("<i2").tobytes()


def quiet(seconds: float) -> bytes:
    return bytes(2 * int(seconds * 16000))


async def chunks(data: bytes, size: int = 3200) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]
        await asyncio.sleep(0)


async def test_sdk_stream_gets_session_deltas_and_done(live_server: LiveServer) -> None:
    client = Mistral(api_key="any", server_url=live_server.url)
    events = [
        e
        async for e in client.audio.realtime.transcribe_stream(
            chunks(quiet(3.0)),  # no turn ends: the fake repeats itself in every segment
            model="voxtral-mini-transcribe-realtime-2602",
            audio_format=AudioFormat(encoding="pcm_s16le", sample_rate=16000),
            target_streaming_delay_ms=480,
        )
    ]
    kinds = [getattr(e, "type", type(e).__name__) for e in events]
    assert isinstance(events[0], RealtimeTranscriptionSessionCreated)
    session = events[0].session
    assert session.model == "voxtral-mini-transcribe-realtime-2602"
    assert session.request_id and session.audio_format.sample_rate == 16000
    assert "transcription.language" in kinds
    assert kinds.index("transcription.language") < kinds.index("transcription.text.delta")
    done = events[-1]
    assert done.type == "transcription.done"
    assert done.text == TRANSCRIPT and done.language == "en"
    deltas = "".join(e.text for e in events if getattr(e, "type", "") == "transcription.text.delta")
    assert deltas.split() == TRANSCRIPT.split()


async def raw_session(server: LiveServer) -> Any:
    return await websockets.connect(ws_url(server))


async def next_event(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_every_bad_input_answers_an_error_event_and_the_session_goes_on(
    live_server: LiveServer,
) -> None:
    async with await raw_session(live_server) as ws:
        assert (await next_event(ws))["type"] == "session.created"
        bad: list[str | dict[str, Any]] = [
            "{not json",
            {"type": "no.such.type"},
            {"type": "input_audio.append", "audio": "%%%not base64%%%"},
            {"type": "input_audio.append", "audio": base64.b64encode(b"\0" * 262_146).decode()},
            {"type": "session.update", "session": {"diarize": True}},
            {"type": "session.update", "session": {"speaker_references": {"a": "AAAA"}}},
            {"type": "session.update", "session": {"audio_format": {"encoding": "mp3"}}},
            {"type": "session.update", "session": {"target_streaming_delay_ms": 5}},
        ]
        for message in bad:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
            event = await next_event(ws)
            assert event["type"] == "error", message
            assert event["error"]["code"] in (400, 413, 422)
            assert event["error"]["message"]
        update = {"audio_format": {"encoding": "pcm_f32le", "sample_rate": 24000}}
        await ws.send(json.dumps({"type": "session.update", "session": update}))
        updated = await next_event(ws)
        assert updated["type"] == "session.updated"
        assert updated["session"]["audio_format"] == update["audio_format"]
        audio = np.zeros(2400, "<f4").tobytes()
        await ws.send(json.dumps({"type": "input_audio.append", "audio": b64(audio)}))
        await ws.send(json.dumps({"type": "session.update", "session": {"language": "fr"}}))
        locked = await next_event(ws)
        assert locked["type"] == "error" and "started" in locked["error"]["message"]
        await ws.send(json.dumps({"type": "input_audio.end"}))
        while (event := await next_event(ws))["type"] != "transcription.done":
            pass
        assert "language" in event


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def short_idle(tmp_path: Any) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path, realtime=RealtimeSettings(idle_timeout_seconds=0.5))
    with run_server(settings, [FakeSTTEngine(TRANSCRIPT)]) as server:
        yield server


async def test_idle_session_ends_with_an_error_event(short_idle: LiveServer) -> None:
    async with await raw_session(short_idle) as ws:
        assert (await next_event(ws))["type"] == "session.created"
        event = await next_event(ws)
        assert event["type"] == "error" and event["error"]["code"] == 408
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1000


async def test_unknown_model_and_a_wrong_key_are_refused_at_the_handshake(
    live_server: LiveServer,
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url(live_server, "no-such-model"))
    assert refused.value.response.status_code == 400
    client = Mistral(api_key="any", server_url=live_server.url)
    with pytest.raises(RealtimeTranscriptionException, match="400"):
        await client.audio.realtime.connect("no-such-model")


@pytest.fixture
def keyed_setup(settings: Settings) -> Iterator[tuple[LiveServer, NewKey, Storage]]:
    storage = create_memory_storage()

    async def key() -> NewKey:
        async with open_services(settings, engines=[], storage=storage) as services:
            return await services.auth.create_key("alice")

    new = asyncio.run(key())
    with run_server(settings, [FakeSTTEngine(TRANSCRIPT)], storage=storage) as server:
        yield server, new, storage


@pytest.fixture
def keyed(keyed_setup: tuple[LiveServer, NewKey, Storage]) -> tuple[LiveServer, str]:
    server, new, _ = keyed_setup
    return server, new.secret


async def test_the_key_is_checked_at_the_handshake(keyed: tuple[LiveServer, str]) -> None:
    server, secret = keyed
    for headers in ({}, {"Authorization": "Bearer vx-wrong"}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(ws_url(server), additional_headers=headers)
        assert refused.value.response.status_code == 401
        assert b"authentication_error" in refused.value.response.body
    good = {"Authorization": f"Bearer {secret}"}
    async with websockets.connect(ws_url(server), additional_headers=good) as ws:
        assert (await next_event(ws))["type"] == "session.created"
    query_key = ws_url(server) + f"&api_key={secret}"
    with pytest.raises(websockets.InvalidStatus):  # keys never travel in query strings
        await websockets.connect(query_key)


@pytest.fixture
def limited(tmp_path: Any) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path, realtime=RealtimeSettings(max_sessions=4, max_sessions_per_owner=8)
    )
    with run_server(settings, [FakeSTTEngine(TRANSCRIPT)]) as server:
        yield server


async def test_eight_sessions_against_a_limit_of_four(limited: LiveServer) -> None:
    async def one() -> str:
        try:
            ws = await websockets.connect(ws_url(limited))
        except websockets.InvalidStatus as exc:
            return f"refused {exc.response.status_code}"
        async with ws:
            await next_event(ws)
            await asyncio.sleep(0.5)  # all eight are trying while these are open
            await ws.send(json.dumps({"type": "input_audio.append", "audio": b64(loud(1.0))}))
            await ws.send(json.dumps({"type": "input_audio.end"}))
            while (event := await next_event(ws))["type"] != "transcription.done":
                pass
            return "finished" if event["text"] == TRANSCRIPT else "wrong"

    results = await asyncio.gather(*(one() for _ in range(8)))
    assert sorted(results) == ["finished"] * 4 + ["refused 429"] * 4


async def test_a_browser_token_opens_a_socket_and_an_expired_one_does_not(
    keyed: tuple[LiveServer, str],
) -> None:
    server, secret = keyed
    client = Mistral(api_key=secret, server_url=server.url)
    model = "voxtral-mini-transcribe-realtime-2602"
    created = await client.realtime.sessions.create_async(
        request={"model": model, "purpose": "realtime"}
    )
    token = created.client_secret.value
    assert secret not in token
    left = (created.expires_at - datetime.now(UTC)).total_seconds()
    assert 890 < left <= 900
    url = server.url.replace("http", "ws") + PATH  # no key anywhere: the token alone
    async with websockets.connect(url, subprotocols=["realtime", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "realtime"
        event = await next_event(ws)
        assert event["type"] == "session.created" and event["session"]["model"] == model
    with pytest.raises(websockets.InvalidStatus) as other_model:
        await websockets.connect(url + "?model=whisper-1", subprotocols=["realtime", token])  # type: ignore[list-item]
    assert other_model.value.response.status_code == 401
    short = await client.realtime.sessions.create_async(
        request={"model": model, "purpose": "realtime", "ttl_seconds": 1}
    )
    await asyncio.sleep(1.1)
    with pytest.raises(websockets.InvalidStatus) as expired:
        await websockets.connect(url, subprotocols=["realtime", short.client_secret.value])  # type: ignore[list-item]
    assert expired.value.response.status_code == 401
    assert b"expired" in expired.value.response.body


def test_model_cards_advertise_realtime_and_delay_ranges(live_server: LiveServer) -> None:
    with live_server.client() as http:
        cards = {c["id"]: c for c in http.get("/v1/models").json()["data"]}
    stt = cards["fake-stt"]
    assert stt["capabilities"]["audio_transcription_realtime"] is True
    caps = stt["audio_transcription_capabilities"]
    assert caps["modes"] == ["offline", "realtime"] and caps["turn_detection"] is True
    assert caps["streaming_delays_ms"] == [{"min": 240, "max": 2400}]
    assert "voxtral-mini-transcribe-realtime-2602" in stt["aliases"]
    tts = cards["fake-tts"]
    assert tts["audio_speech_capabilities"]["modes"] == ["offline", "realtime"]
    client = Mistral(api_key="any", server_url=live_server.url)
    listed = {m.id: m for m in client.models.list().data or []}
    assert listed["fake-stt"].capabilities.audio_transcription_realtime is True


async def test_one_usage_record_per_session_in_audio_seconds(
    keyed_setup: tuple[LiveServer, NewKey, Storage],
) -> None:
    server, new, storage = keyed_setup
    headers = {"Authorization": f"Bearer {new.secret}"}
    async with websockets.connect(ws_url(server), additional_headers=headers) as ws:
        await next_event(ws)
        for _ in range(25):  # 2.5 s
            await ws.send(json.dumps({"type": "input_audio.append", "audio": b64(quiet(0.1))}))
        await ws.send(json.dumps({"type": "input_audio.end"}))
        while (await next_event(ws))["type"] != "transcription.done":
            pass
    await asyncio.sleep(0.2)
    records = await storage.usage.records(new.owner.id)
    realtime = [r for r in records if r.endpoint == "realtime_transcription"]
    assert len(realtime) == 1
    assert realtime[0].status == 200 and abs(realtime[0].audio_seconds - 2.5) < 0.05


async def test_shutdown_closes_open_sockets_with_1012(settings: Settings) -> None:
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_server(settings, [FakeSTTEngine(TRANSCRIPT)]))
        ws = await websockets.connect(ws_url(server))
        assert (await next_event(ws))["type"] == "session.created"
        stopping = asyncio.get_running_loop().run_in_executor(None, stack.close)
        await asyncio.wait_for(ws.wait_closed(), 30)
        await stopping
    assert ws.close_code == 1012


async def test_dropped_clients_free_their_places_at_once(live_server: LiveServer) -> None:
    for _ in range(3):  # 3 x 4 sessions, each dropped mid-audio, against 4 per owner
        sockets = [await websockets.connect(ws_url(live_server)) for _ in range(4)]
        for ws in sockets:
            await next_event(ws)
            await ws.send(json.dumps({"type": "input_audio.append", "audio": b64(quiet(1.0))}))
        for ws in sockets:
            ws.transport.abort()  # no close handshake: the client is simply gone
        await asyncio.sleep(0.3)
    async with websockets.connect(ws_url(live_server)) as ws:
        assert (await next_event(ws))["type"] == "session.created"


async def test_a_keyless_server_refuses_sockets_from_other_sites(live_server: LiveServer) -> None:
    """A page on another site may open a socket to 127.0.0.1 (browsers send its Origin), or
    reach it through a rebinding name: without keys, neither may listen as the local owner."""
    foreign_page = {"Origin": "https://evil.example"}
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url(live_server), additional_headers=foreign_page)
    assert refused.value.response.status_code == 403
    assert await raw_handshake_status(live_server, host="evil.example") == 403
    own_page = {"Origin": live_server.url}
    async with websockets.connect(ws_url(live_server), additional_headers=own_page) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"


async def raw_handshake_status(server: LiveServer, *, host: str) -> int:
    """The status a WebSocket handshake with this ``Host`` gets (clients set their own Host)."""
    address = server.url.removeprefix("http://")
    name, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(name, int(port))
    writer.write(
        (
            "GET /v1/audio/transcriptions/realtime HTTP/1.1\r\n"
            f"Host: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status
