"""A fake diarizer for API tests: each pitch is a speaker.

``FakeDiarizer`` hears tones: every quarter second it finds the loudest frequency (rounded to
50 Hz) and calls that pitch a speaker (``TONE_220``); consecutive quarters of one pitch make a
turn, silence ends one. A voice print is the clip's pitch histogram, so a reference tone of the
same pitch matches its speaker with cosine similarity 1 and other pitches with 0. Pair it with
``tone_wav`` clips of different ``freq``.
"""

from __future__ import annotations

import numpy as np

from voxserve.audio.types import AudioClip
from voxserve.engines.diarization import Diarization, SpeakerTurn
from voxserve.errors import ValidationFailed

FRAME = 0.25
BINS = 40
"""Pitches 0-1950 Hz in 50 Hz steps."""


class FakeDiarizer:
    name = "fake-diarizer"
    version = "1"
    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0
        self.embeds = 0
        self.loads = 0
        self.unloads = 0
        self.loaded = False

    def load(self) -> None:
        self.loads += 1
        self.loaded = True

    def unload(self) -> None:
        self.unloads += 1
        self.loaded = False

    def diarize(self, audio: AudioClip) -> Diarization:
        assert self.loaded, "diarize on an unloaded diarizer"
        self.calls += 1
        turns: list[SpeakerTurn] = []
        for index, pitch in enumerate(self._pitches(audio)):
            if pitch is None:
                continue
            start, end, label = index * FRAME, (index + 1) * FRAME, f"TONE_{pitch * 50}"
            if turns and turns[-1].speaker == label and turns[-1].end == start:
                turns[-1] = SpeakerTurn(label, turns[-1].start, end)
            else:
                turns.append(SpeakerTurn(label, start, end))
        voices = {t.speaker: _one_hot(int(t.speaker[5:]) // 50) for t in turns}
        return Diarization(tuple(turns), voices)

    def embed(self, audio: AudioClip) -> np.ndarray:
        assert self.loaded, "embed on an unloaded diarizer"
        self.embeds += 1
        pitches = [p for p in self._pitches(audio) if p is not None]
        if not pitches:
            raise ValidationFailed("No speech found in a speaker reference clip.")
        return np.sum([_one_hot(p) for p in pitches], axis=0)

    def _pitches(self, audio: AudioClip) -> list[int | None]:
        size = round(FRAME * audio.sample_rate)
        found: list[int | None] = []
        for start in range(0, len(audio.samples) - size + 1, size):
            frame = audio.samples[start : start + size]
            if float(np.sqrt(np.mean(frame**2))) < 0.01:
                found.append(None)
                continue
            spectrum = np.abs(np.fft.rfft(frame))
            hz = float(np.argmax(spectrum)) * audio.sample_rate / size
            found.append(min(BINS - 1, round(hz / 50)))
        return found


def _one_hot(index: int) -> np.ndarray:
    vector = np.zeros(BINS, dtype=np.float32)
    vector[index] = 1.0
    return vector
