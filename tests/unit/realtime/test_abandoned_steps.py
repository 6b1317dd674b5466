"""Abandoning a realtime step part-way: a flush or end stops the step under way at its next
checkpoint (its window is decoded again by the commit), a turn end found by the voice-activity
detector does not. Over a fake recogniser (named as a fake) that waits at a gate between two
checkpoints, as a real engine's stages do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from voxserve.audio.types import AudioClip, Samples
from voxserve.core.realtime_stt import RealtimeSTTConfig, TranscriptionSession
from voxserve.core.turns import TurnEvent
from voxserve.engines.checkpoints import DecodeAbandoned, abandonable, checkpoint
from voxserve.engines.fake import FakeSTTEngine
from voxserve.engines.protocol import Segment, TranscriptionInfo, TranscriptionOptions
from voxserve.engines.streaming import AgreementStream, StreamUpdate, join_words

from .test_transcription_session import collect, energy_vad, feed, off_loop, pcm

TEXT = "Hello there. General Kenobi."


class GatedFakeRecogniser:
    """A fake: the fake engine's words, after a first checkpoint, a wait at ``gate`` and a
    second checkpoint (an encoder pass, then a generation)."""

    def __init__(self) -> None:
        self.fake = FakeSTTEngine(TEXT)
        self.gate = threading.Event()
        self.started = threading.Event()

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        checkpoint()
        self.started.set()
        self.gate.wait(10)
        checkpoint()
        return self.fake.transcribe(audio, options)


def two_seconds() -> Samples:
    return np.full(32000, 0.5, np.float32)


def test_an_abandoned_step_returns_no_words_and_the_commit_hears_them_all() -> None:
    recogniser = GatedFakeRecogniser()
    stream = AgreementStream(recogniser.transcribe, 16000, TranscriptionOptions())
    result: list[StreamUpdate] = []
    stepping = threading.Thread(target=lambda: result.append(stream.step(two_seconds())))
    stepping.start()
    assert recogniser.started.wait(10)
    stream.abandon_step()
    recogniser.gate.set()
    stepping.join(10)
    assert result[0].words == ()
    assert stream.window_seconds == pytest.approx(2.0)  # its audio waits for the commit
    final = stream.commit(np.zeros(0, np.float32))
    assert join_words(final.words) == TEXT


def test_abandoning_when_no_step_runs_changes_nothing() -> None:
    recogniser = GatedFakeRecogniser()
    recogniser.gate.set()
    stream = AgreementStream(recogniser.transcribe, 16000, TranscriptionOptions())
    stream.abandon_step()
    update = stream.step(two_seconds())  # 2 s of new audio settles what one decode heard
    assert update.words


def test_a_checkpoint_outside_an_abandonable_decode_does_nothing() -> None:
    checkpoint()
    event = threading.Event()
    with abandonable(event):
        checkpoint()
        event.set()
        with pytest.raises(DecodeAbandoned):
            checkpoint()
    checkpoint()


class CountingStream:
    """A fake stream that counts the abandon requests it gets."""

    def __init__(self) -> None:
        self.abandoned = 0
        self.received = 0

    @property
    def audio_seconds(self) -> float:
        return self.received / 16000

    def step(self, audio: Samples) -> StreamUpdate:
        self.received += len(audio)
        return StreamUpdate()

    def commit(self, audio: Samples) -> StreamUpdate:
        self.received += len(audio)
        return StreamUpdate()

    def abandon_step(self) -> None:
        self.abandoned += 1


async def test_flush_and_end_abandon_the_step_a_turn_end_does_not() -> None:
    stream = CountingStream()
    s = TranscriptionSession(stream, off_loop, RealtimeSTTConfig(), voice_activity=energy_vad)
    await feed(s, pcm(1.0, 0.5) + pcm(1.5, 0.0))  # a turn, then a pause that ends it
    assert stream.abandoned == 0
    s.flush()
    assert stream.abandoned == 1
    s.end()
    assert stream.abandoned == 2
    events = await asyncio.wait_for(collect(s), 10)
    turns = [e for e in events if isinstance(e, TurnEvent)]
    assert [t.kind for t in turns] == ["start", "eager_end", "end"] and turns[2].time_s < 1.5
