"""Sessions sharing one engine: the lag stays bounded and no session starves.

A deterministic simulation on a virtual clock: a FAKE recogniser whose decode costs a fixed
time per 30 s encoder pass whatever the window's length (as Whisper's: it pads to 30 s, and a
longer window takes a second pass), one engine slot
granted first come first served (as the engine manager's), and sessions fed 100 ms chunks at
real-time pace. The real ``TranscriptionSession`` and ``AgreementStream`` do the scheduling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from voxserve.audio.types import AudioClip
from voxserve.core.realtime_stt import (
    RealtimeSTTConfig,
    Step,
    TextDelta,
    TranscriptionDone,
    TranscriptionSession,
)
from voxserve.engines.protocol import Segment, TranscriptionInfo, TranscriptionOptions, Word
from voxserve.engines.streaming import DECODE_LIMIT_S, AgreementStream, StreamUpdate

RATE = 16000
WORD_S, GAP_S = 0.4, 0.1
"""The fake speech: word k fills [k/2, k/2 + 0.4) with the level (k + 1) / 1000, then silence."""
TICK_S = 0.1
PASS_S = 30.0


def fake_speech(seconds: float) -> np.ndarray:
    audio = np.zeros(round(seconds * RATE), np.float32)
    for k in range(int(seconds / (WORD_S + GAP_S))):
        at = round(k * (WORD_S + GAP_S) * RATE)
        audio[at : at + round(WORD_S * RATE)] = (k + 1) / 1000
    return audio


@dataclass
class Clock:
    now: float = 0.0
    _waiters: list[tuple[float, asyncio.Event]] = field(default_factory=list)

    async def until(self, at: float) -> None:
        event = asyncio.Event()
        self._waiters.append((at, event))
        await event.wait()

    def advance(self, to: float) -> None:
        self.now = to
        for at, event in self._waiters:
            if at <= to + 1e-9:
                event.set()
        self._waiters = [(at, e) for at, e in self._waiters if not e.is_set()]


@dataclass
class FakeFixedCostRecogniser:
    """A fake batch recogniser: hears every word that ends inside the window (a word still
    sounding at the window's end is not heard yet); a decode costs ``decode_s`` per 30 s
    encoder pass, added to ``spent``."""

    decode_s: float
    spent: list[float]
    decodes: int = 0
    longest_window: float = 0.0

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        self.decodes += 1
        self.spent.append(self.decode_s * -(-audio.duration // PASS_S))
        self.longest_window = max(self.longest_window, audio.duration)
        samples = np.round(audio.samples * 1000).astype(int)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], samples, [0]])))
        words = []
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end < len(samples):  # ended inside the window
                k = samples[start] - 1
                words.append(Word(f" w{k}", start / RATE, end / RATE, 1.0))
        info = TranscriptionInfo("en", 1.0, audio.duration)
        segment = Segment(
            " ".join(w.word.strip() for w in words), 0.0, audio.duration, tuple(words)
        )
        return info, iter([segment] if words else [])


async def hop(times: int = 20) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def simulate(
    sessions: int, seconds: float, decode_s: float
) -> tuple[list[list[float]], list[int], list[str]]:
    """Per session: each word's lag (virtual seconds from its end to its delta), the decodes
    it got, and its final text."""
    clock, slot = Clock(), asyncio.Lock()  # asyncio.Lock grants waiters in order
    spent: list[float] = []

    async def engine(step: Step, audio: np.ndarray) -> StreamUpdate:
        async with slot:
            spent.clear()
            update = step(audio)  # the session takes its work when the slot is granted
            await clock.until(clock.now + sum(spent))
            return update

    recognisers = [FakeFixedCostRecogniser(decode_s, spent) for _ in range(sessions)]
    streams = [AgreementStream(r.transcribe, RATE, TranscriptionOptions()) for r in recognisers]
    config = RealtimeSTTConfig(turn_detection=None)
    live = [TranscriptionSession(s, engine, config) for s in streams]
    lags: list[list[float]] = [[] for _ in live]
    texts = [""] * sessions

    async def collect(i: int) -> None:
        async for event in live[i].events():
            if isinstance(event, TextDelta):
                lags[i] += [clock.now - w.end for w in event.words]
            elif isinstance(event, TranscriptionDone):
                texts[i] = event.text

    collectors = [asyncio.create_task(collect(i)) for i in range(sessions)]
    audio = (fake_speech(seconds) * 32767).astype("<i2").tobytes()
    chunk = round(TICK_S * RATE) * 2
    for tick, at in enumerate(range(0, len(audio), chunk), start=1):
        for session in live:
            await session.append(audio[at : at + chunk])
        await hop()
        clock.advance(tick * TICK_S)
        await hop()
    for session in live:
        session.end()
    while not all(c.done() for c in collectors):
        clock.advance(clock.now + TICK_S)
        await hop()
    return lags, [r.decodes for r in recognisers], texts


@pytest.mark.parametrize(("sessions", "decode_s"), [(1, 1.5), (4, 1.5), (4, 3.0)])
async def test_lag_stays_bounded_and_no_session_starves(sessions: int, decode_s: float) -> None:
    """At 4 x 3 s the engine takes 12 s to go round: a step brings 12 s of new audio, which
    with a 20 s window used to need a second encoder pass, and the lag grew without end."""
    seconds = 60.0
    lags, decodes, texts = await asyncio.wait_for(simulate(sessions, seconds, decode_s), 60)
    words = " ".join(f"w{k}" for k in range(int(seconds / (WORD_S + GAP_S))))
    assert texts == [words] * sessions  # every session finishes with every word, in order
    turn = sessions * decode_s  # the engine goes round the sessions once per turn
    bound = 2 * turn + decode_s + WORD_S
    for lag in lags:
        assert max(lag) <= bound
        last = lag[len(lag) * 3 // 4 :]
        assert max(last) <= bound  # and it does not grow as the session goes on
    assert max(decodes) - min(decodes) <= 2  # the engine's turns were shared evenly


async def test_a_session_far_behind_decodes_one_window_per_turn() -> None:
    """An engine so loaded that a session brings a minute of audio to one step: each decode
    still sees at most one encoder pass, the rest waits for the next step, none is lost."""
    recogniser = FakeFixedCostRecogniser(1.0, [])
    stream = AgreementStream(recogniser.transcribe, RATE, TranscriptionOptions())
    audio = fake_speech(60.0)
    update = stream.step(audio)
    assert recogniser.decodes == 1 and recogniser.longest_window <= DECODE_LIMIT_S
    assert stream.backlog_seconds > 60.0 - DECODE_LIMIT_S - 0.01
    assert update.words  # one decode heard these words whole: settled at once
    heard = list(update.words)
    while stream.backlog_seconds:
        heard += stream.step(np.zeros(0, np.float32)).words
    heard += stream.commit(np.zeros(0, np.float32)).words
    assert recogniser.longest_window <= DECODE_LIMIT_S
    assert [w.word.strip() for w in heard] == [f"w{k}" for k in range(120)]
