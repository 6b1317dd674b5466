"""The realtime transcription session over a fake recogniser (named as a fake): event order,
turns, flush, end, locked settings."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxserve.core.realtime_stt import (
    AudioInputFormat,
    LanguageDetected,
    RealtimeSTTConfig,
    SegmentDone,
    Step,
    TextDelta,
    TranscriptionDone,
    TranscriptionSession,
)
from voxserve.core.turns import TurnEvent
from voxserve.engines.fake import FakeSTTEngine
from voxserve.engines.protocol import Segment, TranscriptionOptions, Word
from voxserve.engines.streaming import AgreementStream, StreamUpdate
from voxserve.errors import InvalidRequest

CHUNK = 1600  # 100 ms at 16 kHz


async def off_loop(step: Step, audio: np.ndarray) -> StreamUpdate:
    return await asyncio.to_thread(step, audio)


async def energy_vad(samples: np.ndarray) -> list[float]:
    """A fake detector: loud frames are speech."""
    frames = samples[: len(samples) // 512 * 512].reshape(-1, 512)
    return [1.0 if np.abs(f).mean() > 0.1 else 0.0 for f in frames]


def session(config: RealtimeSTTConfig | None = None, **kwargs: object) -> TranscriptionSession:
    fake = FakeSTTEngine("Hello there. General Kenobi.")
    stream = AgreementStream(fake.transcribe, 16000, TranscriptionOptions())
    return TranscriptionSession(stream, off_loop, config or RealtimeSTTConfig(), **kwargs)  # type: ignore[arg-type]


def pcm(seconds: float, level: float) -> bytes:
    return (np.full(int(seconds * 16000), level * 32767)).astype("<i2").tobytes()


async def feed(s: TranscriptionSession, data: bytes) -> None:
    for at in range(0, len(data), CHUNK * 2):
        await s.append(data[at : at + CHUNK * 2])
        await asyncio.sleep(0)


async def collect(s: TranscriptionSession) -> list[object]:
    return [e async for e in s.events()]


async def test_language_first_then_deltas_segment_and_done() -> None:
    s = session(RealtimeSTTConfig(turn_detection=None))
    await feed(s, pcm(3.0, 0.5))
    s.end()
    events = await asyncio.wait_for(collect(s), 30)
    assert isinstance(events[0], LanguageDetected) and events[0].language == "en"
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(d.text for d in deltas) == "Hello there. General Kenobi."
    assert isinstance(events[-2], SegmentDone)
    done = events[-1]
    assert isinstance(done, TranscriptionDone)
    assert done.text == "Hello there. General Kenobi."
    assert done.audio_seconds == pytest.approx(3.0)


async def test_a_pause_ends_a_turn_and_a_segment() -> None:
    s = session(voice_activity=energy_vad)
    await feed(s, pcm(1.5, 0.5) + pcm(1.5, 0.0) + pcm(1.5, 0.5))
    s.end()
    events = await asyncio.wait_for(collect(s), 30)
    turns = [e.kind for e in events if isinstance(e, TurnEvent)]
    assert turns == ["start", "eager_end", "end", "start", "end"]
    assert len([e for e in events if isinstance(e, SegmentDone)]) == 2
    first_end = next(
        i for i, e in enumerate(events) if isinstance(e, TurnEvent) and e.kind == "end"
    )
    first_segment = next(i for i, e in enumerate(events) if isinstance(e, SegmentDone))
    assert first_segment > first_end


async def test_flush_ends_the_segment_without_ending_the_session() -> None:
    s = session(RealtimeSTTConfig(turn_detection=None))
    await feed(s, pcm(1.0, 0.5))
    s.flush()
    await feed(s, pcm(1.0, 0.5))
    s.end()
    events = await asyncio.wait_for(collect(s), 30)
    assert len([e for e in events if isinstance(e, SegmentDone)]) == 2


async def test_settings_lock_once_audio_starts_and_nothing_after_end() -> None:
    s = session()
    s.update(RealtimeSTTConfig(audio_format=AudioInputFormat("pcm_f32le", 24000)))
    await s.append(np.zeros(2400, "<f4").tobytes())
    with pytest.raises(InvalidRequest):
        s.update(RealtimeSTTConfig())
    s.end()
    with pytest.raises(InvalidRequest):
        await s.append(b"\0\0")
    events = await asyncio.wait_for(collect(s), 30)
    assert isinstance(events[-1], TranscriptionDone)
    await s.close()


class FakeWordStream:
    """A fake recogniser (named as a fake): a commit hears one word per 0.5 s of its audio,
    ``w0``, ``w1``... timed inside that half second; steps hear nothing. Counts commits."""

    def __init__(self) -> None:
        self.received = 0
        self.commits = 0

    @property
    def audio_seconds(self) -> float:
        return self.received / 16000

    def step(self, audio: np.ndarray) -> StreamUpdate:
        self.received += len(audio)
        return StreamUpdate()

    def commit(self, audio: np.ndarray) -> StreamUpdate:
        start = self.audio_seconds
        self.received += len(audio)
        self.commits += 1
        halves = range(round(start * 2), round(self.audio_seconds * 2))
        words = tuple(Word(f" w{k}", k / 2, k / 2 + 0.4) for k in halves)
        text = " ".join(w.word.strip() for w in words)
        return StreamUpdate(words, "en", Segment(text, start, self.audio_seconds, words))


async def test_turn_ends_that_wait_for_a_busy_engine_share_one_commit() -> None:
    stream = FakeWordStream()
    busy = asyncio.Event()

    async def slow(step: Step, audio: np.ndarray) -> StreamUpdate:
        await busy.wait()  # the engine is serving other sessions
        return step(audio)

    s = TranscriptionSession(stream, slow, RealtimeSTTConfig(turn_detection=None))  # type: ignore[arg-type]
    half = np.full(8000, 0.2 * 32767).astype("<i2").tobytes()
    await s.append(half)
    s.flush()
    await asyncio.sleep(0.01)  # the first commit is waiting for the engine
    for _ in range(2):
        await s.append(half)
        s.flush()
    s.end()
    busy.set()
    events = [e async for e in s.events()]
    segments = [e.segment.text for e in events if isinstance(e, SegmentDone)]
    assert segments == ["w0", "w1", "w2", ""]  # one per turn end, in order; end's is empty
    # the work is taken when the engine is free: every turn end that came meanwhile (the
    # end's too) joins the commit that was waiting, one decode for all
    assert stream.commits == 1
    done = events[-1]
    assert isinstance(done, TranscriptionDone) and done.text == "w0 w1 w2"
