"""Realtime speech pays in characters, like REST speech (#10): through ``mistralai``'s
``audio.realtime_speech`` on a live server whose key has a balance, with the fake speech engine
(named as a fake). Each piece's credits are taken before its audio; a balance that runs out ends
the session with an ``error`` event naming it; a client that hangs up pays for the pieces whose
audio it received; one usage record per session. A ``ref_audio`` is cloned once per session."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mistralai.client import Mistral
from mistralai.extra.realtime import SpeechStreamAudioDelta, SpeechStreamDone

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer
from tests.support.metered_server import serve_with_credits, settled_usage
from voxserve.engines.fake import FakeTTSEngine

MODEL = "voxtral-mini-tts-latest"
VOICE = "fake-tts:alice"
SENTENCES = ["Sentence one speaks.", "Sentence two speaks.", "Sentence three speaks."]
BALANCE = 1000


@pytest.fixture
def engine() -> FakeTTSEngine:
    return FakeTTSEngine(delay=0.05)


@pytest.fixture
def server(tmp_path: Path, engine: FakeTTSEngine) -> Iterator[tuple[LiveServer, str]]:
    yield from serve_with_credits(tmp_path, engine, BALANCE)


@pytest.fixture
def poor_server(tmp_path: Path, engine: FakeTTSEngine) -> Iterator[tuple[LiveServer, str]]:
    yield from serve_with_credits(tmp_path, engine, len(SENTENCES[0]) + 5)


async def sentences() -> AsyncIterator[str]:
    for sentence in SENTENCES:
        yield sentence + " "


def settled(live: LiveServer, key: str) -> dict[str, Any]:
    return settled_usage(live, key, "the session")


def records(report: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    return [(r["endpoint"], r["status"], r["credits"], r["characters"]) for r in report["records"]]


async def test_a_whole_session_costs_every_character_once(
    server: tuple[LiveServer, str],
) -> None:
    live, key = server
    client = Mistral(api_key=key, server_url=live.url)
    events = [
        e
        async for e in client.audio.realtime_speech.speak_stream(
            sentences(), MODEL, voice_id=VOICE, streaming_mode="long_form"
        )
    ]
    assert isinstance(events[-1], SpeechStreamDone)
    spoken = sum(len(s) for s in SENTENCES)
    assert events[-1].usage.prompt_tokens == spoken
    report = settled(live, key)
    assert records(report) == [("realtime_speech", 200, spoken, spoken)]
    assert report["balance"] == BALANCE - spoken


async def test_a_balance_that_runs_out_ends_the_session_with_an_error_naming_it(
    poor_server: tuple[LiveServer, str],
) -> None:
    live, key = poor_server
    client = Mistral(api_key=key, server_url=live.url)
    events = [
        e
        async for e in client.audio.realtime_speech.speak_stream(
            sentences(), MODEL, voice_id=VOICE, streaming_mode="long_form"
        )
    ]
    assert any(isinstance(e, SpeechStreamAudioDelta) for e in events)  # the first piece
    error = events[-1]
    assert error.type == "error"
    assert error.error.code == 402 and "Not enough credits" in str(error.error.message)
    first = len(SENTENCES[0])
    report = settled(live, key)
    assert records(report) == [("realtime_speech", 402, first, first)]
    assert report["balance"] == 5


async def test_a_client_that_hangs_up_pays_for_the_pieces_it_received(
    server: tuple[LiveServer, str],
) -> None:
    live, key = server
    client = Mistral(api_key=key, server_url=live.url)
    conn = await client.audio.realtime_speech.connect(
        MODEL, voice_id=VOICE, streaming_mode="long_form"
    )
    await conn.flush(" ".join(SENTENCES))
    first_piece_chunks = len(SENTENCES[0].split())  # the fake engine: one chunk per word
    deltas = 0
    async for event in conn.events():
        deltas += isinstance(event, SpeechStreamAudioDelta)
        if deltas == first_piece_chunks + 1:  # the first chunk of the second piece
            break
    await conn.close()
    received = len(SENTENCES[0]) + len(SENTENCES[1])
    report = settled(live, key)
    assert records(report) == [("realtime_speech", 499, received, received)]
    assert report["balance"] == BALANCE - received


async def test_ref_audio_is_cloned_once_per_session(
    server: tuple[LiveServer, str], engine: FakeTTSEngine
) -> None:
    live, key = server
    client = Mistral(api_key=key, server_url=live.url)
    sample = base64.b64encode(tone_wav(3.0)).decode()
    events = [
        e
        async for e in client.audio.realtime_speech.speak_stream(
            sentences(), MODEL, ref_audio=sample, streaming_mode="long_form"
        )
    ]
    assert isinstance(events[-1], SpeechStreamDone)
    assert len(engine.requests) == len(SENTENCES)
    assert {r.voice_state for r in engine.requests} == {engine.requests[0].voice_state}
    assert engine.requests[0].voice_state is not None
    assert engine.clones == 1
