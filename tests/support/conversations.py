"""Multi-speaker conversations built from the shared LibriSpeech clips, with exact ground truth.

``conversation(n)`` lays utterances of ``n`` LibriSpeech test-other speakers end to end, taking
turns, with pauses between most turns and a short overlap in some. Each utterance is trimmed to
its speech (leading and trailing silence cut by frame energy), so each turn's start and end are
where that voice starts and stops in the mix: the ground truth is exact by construction. Every
speaker also gets a reference clip (another of their utterances, never one in the
conversation) for ``speaker_references`` tests. The choice is fixed (no randomness), so tests
and the benchmark always hear the same audio.
"""

from __future__ import annotations

import io
import wave
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.support.speech_data import SpeechClip, clips, decode

RATE = 16000
FOLDER = "librispeech_test-other"
PAUSES = (0.6, 0.9, 0.4, 1.2, 0.7)
"""Seconds of silence after each turn, cycled; a turn listed in ``OVERLAP_EVERY`` overlaps."""
OVERLAP = 0.4
"""Seconds by which an overlapping turn starts before the previous one ends."""
OVERLAP_EVERY = 4
"""Every fourth turn overlaps the one before it."""
COLLAR = 0.25
"""Seconds around each reference boundary that the metrics forgive."""


@dataclass(frozen=True)
class Turn:
    speaker: str
    """The LibriSpeech speaker id (``1688``)."""
    start: float
    end: float
    transcript: str


@dataclass(frozen=True)
class Conversation:
    samples: np.ndarray
    """Mono float32 at 16 kHz."""
    turns: tuple[Turn, ...]
    references: dict[str, np.ndarray]
    """Speaker id -> a 3-15 s clip of that speaker that is not in the conversation."""

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.speaker for t in self.turns))

    def wav(self) -> bytes:
        return wav_bytes(self.samples)

    def speech_time(self) -> float:
        return sum(t.end - t.start for t in self.turns)


SPEAKERS = ("1688", "3080", "2033", "533")
"""Two men and two women, alternating, so that the 2-speaker case is a man and a woman."""


HELD_OUT = ("1998", "2609", "2414", "367", "3331", "3005")
"""The other six speakers, for checking rules chosen on ``SPEAKERS`` on voices they never saw."""


def conversation(
    n_speakers: int,
    turns_each: int = 3,
    max_turn: float = 9.0,
    *,
    speakers: Sequence[str] = SPEAKERS,
    skip: int = 0,
) -> Conversation:
    """``n_speakers`` (2-4) of ``speakers`` taking ``turns_each`` turns each, round robin.

    Utterances of 2.5 to ``max_turn`` seconds are used for turns (shortest first after the
    first ``skip``, so tests stay short); the longest utterance of 3.5-14 s left over becomes the
    speaker's reference. ``speakers=HELD_OUT`` or ``skip`` give held-out conversations.
    """
    if not 2 <= n_speakers <= len(speakers):
        raise ValueError(f"2 to {len(speakers)} speakers, not {n_speakers}")
    by_speaker = _utterances()
    chosen = speakers[:n_speakers]
    plan: dict[str, list[SpeechClip]] = {}
    references: dict[str, np.ndarray] = {}
    for speaker in chosen:
        pool = sorted(by_speaker[speaker], key=lambda c: c.duration)
        usable = [c for c in pool if 2.5 <= c.duration <= max_turn]
        plan[speaker] = usable[skip : skip + turns_each]
        spare = [c for c in pool if c not in plan[speaker] and 3.5 <= c.duration <= 14.0]
        references[speaker] = trim(decode(spare[-1].path).samples)
    order = [plan[s][i] for i in range(turns_each) for s in chosen]
    return _mix(order, references)


def _mix(order: list[SpeechClip], references: dict[str, np.ndarray]) -> Conversation:
    pieces: list[tuple[int, np.ndarray]] = []
    turns: list[Turn] = []
    cursor = round(0.5 * RATE)
    for index, clip in enumerate(order):
        speech = trim(decode(clip.path).samples)
        if index and index % OVERLAP_EVERY == 0:
            cursor -= round((OVERLAP + PAUSES[(index - 1) % len(PAUSES)]) * RATE)
        speaker = clip.file.split("/")[1]
        turns.append(Turn(speaker, cursor / RATE, (cursor + len(speech)) / RATE, clip.transcript))
        pieces.append((cursor, speech))
        cursor += len(speech) + round(PAUSES[index % len(PAUSES)] * RATE)
    total = np.zeros(cursor + round(0.5 * RATE), dtype=np.float32)
    for start, speech in pieces:
        total[start : start + len(speech)] += speech
    peak = float(np.max(np.abs(total)))
    if peak > 0.99:
        total *= 0.99 / peak
    return Conversation(total, tuple(turns), references)


def _utterances() -> dict[str, list[SpeechClip]]:
    found: dict[str, list[SpeechClip]] = defaultdict(list)
    for clip in clips(folder=FOLDER):
        found[clip.file.split("/")[1]].append(clip)
    return found


def trim(samples: np.ndarray, threshold_db: float = -35.0, frame: float = 0.02) -> np.ndarray:
    """``samples`` without leading and trailing frames quieter than ``threshold_db`` below the
    loudest frame."""
    size = round(frame * RATE)
    count = len(samples) // size
    frames = samples[: count * size].reshape(count, size)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    if loud.size == 0:
        return samples
    return np.ascontiguousarray(samples[loud[0] * size : (loud[-1] + 1) * size])


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit mono WAV at 16 kHz."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


def der(talk: Conversation, turns: Sequence[Any]) -> float:
    """Diarization error rate (pyannote.metrics, ``COLLAR``) of ``turns`` (objects with
    ``speaker``, ``start``, ``end``) over the whole conversation."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference, hypothesis = Annotation(), Annotation()
    for t in talk.turns:
        reference[Segment(t.start, t.end)] = t.speaker
    for h in turns:
        hypothesis[Segment(h.start, h.end)] = h.speaker
    uem = Timeline([Segment(0.0, talk.duration)])
    return float(DiarizationErrorRate(collar=COLLAR)(reference, hypothesis, uem=uem))


def named_fraction(talk: Conversation, turns: Sequence[Any], names: Mapping[str, str]) -> float:
    """Share of the reference speech time (outside ``COLLAR`` of each boundary) that a turn
    carrying the right speaker's name covers (``names``: turn label -> speaker id)."""
    right = total = 0.0
    for turn in talk.turns:
        start, end = turn.start + COLLAR, turn.end - COLLAR
        total += end - start
        for h in turns:
            if names.get(h.speaker) == turn.speaker:
                right += max(0.0, min(end, h.end) - max(start, h.start))
    return right / total
