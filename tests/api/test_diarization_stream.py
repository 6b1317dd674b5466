"""Diarized streams send each segment as soon as it is known: the diarizer runs first, then each
transcribed segment goes out labelled while the engine is still decoding the next (fake STT
engine that takes 0.3 s per segment, fake diarizer; through both SDKs)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import openai
import pytest
from mistralai.client import Mistral

from tests.support.audio_samples import pcm16_wav
from tests.support.fake_diarizer import FakeDiarizer
from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeSTTEngine
from voxserve.engines.protocol import Segment

RATE = 16000
STEP = 0.3


class SlowFakeSTTEngine(FakeSTTEngine):
    """A fake engine that takes ``STEP`` seconds to decode each segment and notes when the
    transcription finished (``finished``, a ``time.monotonic()`` reading)."""

    finished = 0.0

    def _segments(self, text: str, duration: float, words: bool) -> Iterator[Segment]:
        for segment in super()._segments(text, duration, words):
            time.sleep(STEP)
            yield segment
        self.finished = time.monotonic()


@pytest.fixture
def engine() -> SlowFakeSTTEngine:
    return SlowFakeSTTEngine("one two. three four. five six. seven eight.")


@pytest.fixture
def fake_engines(engine: SlowFakeSTTEngine) -> list[object]:
    return [engine, FakeDiarizer()]


def two_voices() -> bytes:
    t = np.arange(2 * RATE) / RATE
    tones = [0.3 * np.sin(2 * np.pi * f * t) for f in (220, 440)]
    return pcm16_wav(np.concatenate(tones), RATE)


def test_mistral_segments_come_while_the_transcription_goes_on(
    live_server: LiveServer, engine: SlowFakeSTTEngine
) -> None:
    stream = Mistral(server_url=live_server.url).audio.transcriptions.stream(
        model="voxtral-mini-latest",
        file={"file_name": "talk.wav", "content": two_voices()},
        diarize=True,
    )
    arrivals = [(e.event, e.data, time.monotonic()) for e in stream]
    segments = [(data, at) for kind, data, at in arrivals if kind == "transcription.segment"]
    assert [s.speaker_id for s, _ in segments] == ["speaker_1"] * 2 + ["speaker_2"] * 2  # type: ignore[attr-defined]
    assert arrivals[-1][0] == "transcription.done"
    assert segments[0][1] < engine.finished - STEP  # the first went out before the last was made


def test_openai_diarized_segments_come_while_the_transcription_goes_on(
    live_server: LiveServer, engine: SlowFakeSTTEngine
) -> None:
    stream = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any").audio.transcriptions
    events = stream.create(
        model="gpt-4o-transcribe-diarize",
        file=("talk.wav", two_voices(), "audio/wav"),
        response_format="diarized_json",
        chunking_strategy="auto",
        stream=True,
    )
    arrivals = [(e.type, e, time.monotonic()) for e in events]
    segments = [(e, at) for kind, e, at in arrivals if kind == "transcript.text.segment"]
    assert [e.speaker for e, _ in segments] == ["A", "A", "B", "B"]  # type: ignore[attr-defined]
    assert arrivals[-1][0] == "transcript.text.done"
    assert segments[0][1] < engine.finished - STEP
