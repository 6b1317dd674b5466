"""Silero VAD (bundled with faster-whisper) on real speech, and turns from its probabilities."""

from __future__ import annotations

import numpy as np

from tests.support import speech_data
from voxserve.core.turns import TurnDetector, TurnSettings
from voxserve.engines.vad import FRAME_SECONDS, SAMPLE_RATE, SileroVAD

JFK = "faster_whisper_tests/jfk.flac"
READ = ("ljspeech/LJ001-0001.flac", "ljspeech/LJ001-0003.flac")
"""Read speech without pauses of half a second: one turn each."""


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def test_speech_scores_high_and_silence_low() -> None:
    speech = speech_data.decode(speech_data.clip(JFK).path).samples
    vad = SileroVAD()
    quiet = vad.stream().feed(silence(1.0))
    loud = vad.stream().feed(speech)
    assert max(quiet) < 0.2
    assert np.mean(np.array(loud) > 0.5) > 0.5


def test_chunk_size_does_not_change_the_probabilities() -> None:
    speech = speech_data.decode(speech_data.clip(JFK).path).samples[: SAMPLE_RATE * 3]
    vad = SileroVAD()
    whole = vad.stream().feed(speech)
    stream = vad.stream()
    pieces: list[float] = []
    for at in range(0, len(speech), 1600):  # 100 ms chunks, not frame-aligned
        pieces.extend(stream.feed(speech[at : at + 1600]))
    assert len(pieces) == len(whole)
    assert np.allclose(pieces, whole, atol=1e-4)


def test_clip_pause_clip_gives_two_turns() -> None:
    first, second = (speech_data.decode(speech_data.clip(f).path).samples for f in READ)
    audio = np.concatenate([silence(0.5), first, silence(1.5), second, silence(1.0)])
    stream = SileroVAD().stream()
    detector = TurnDetector(TurnSettings(), FRAME_SECONDS)
    events = []
    for at in range(0, len(audio), 1600):
        events.extend(detector.feed(stream.feed(audio[at : at + 1600])))
    ends = [e for e in events if e.kind == "end"]
    starts = [e for e in events if e.kind == "start"]
    assert len(ends) == 2 and len(starts) == 2
    first_end = 0.5 + len(first) / SAMPLE_RATE
    assert abs(ends[0].time_s - first_end) < 0.6
    assert starts[1].time_s > first_end + 1.0
