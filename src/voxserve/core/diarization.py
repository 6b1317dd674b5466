"""Diarization for transcription: who spoke each word, with names from ``speaker_references``.

The transcript and the speaker turns are joined word by word (the STT engine's word timestamps
against the diarizer's turns): each word goes to the turn that covers most of it (overlapping
speech: the dominant speaker), the nearest turn when none does, and a segment is cut wherever the
speaker changes, so no segment straddles a change. Speakers are named by cosine similarity of
their voice prints with the reference clips' (one name per speaker, best pairs first, at least
``match_threshold``); the others stay anonymous, numbered in order of first appearance
(``speaker_1``, or ``A`` for OpenAI's shape).

Limits on references are the shape's (Mistral: at most 8 of 3-15 s; OpenAI: 4 of 2-10 s) and
are checked before anything is transcribed.
"""

from __future__ import annotations

import math
import string
from bisect import bisect_left
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Literal

import numpy as np

from voxserve.audio.decode import Source, iter_decode
from voxserve.audio.pool import DecodePool
from voxserve.audio.resample import resample
from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.diarization import Diarization, DiarizationRunner, SpeakerTurn
from voxserve.engines.handles import STTHandle
from voxserve.engines.protocol import Segment, Word
from voxserve.errors import InvalidRequest, ServiceUnavailable, Unsupported, ValidationFailed
from voxserve.offload import run_in_thread
from voxserve.settings import DiarizationSettings

Anonymous = Literal["numbered", "lettered"]
INSTALL_HINT = (
    "Diarization needs the diarize extra: pip install 'voxserve[diarize]' "
    "(or scripts/install --diarize), or a remote transcription server that diarizes."
)


@dataclass(frozen=True)
class ReferenceLimits:
    """How many speaker references a shape takes, and how long each may be."""

    max_count: int = 8
    min_seconds: float = 3.0
    max_seconds: float = 15.0
    field: str = "speaker_references"


MISTRAL_LIMITS = ReferenceLimits()
OPENAI_LIMITS = ReferenceLimits(4, 2.0, 10.0, "known_speaker_references")


@dataclass(frozen=True)
class DiarizationPlan:
    """What a diarized transcription needs once the words are known."""

    audio: AudioClip
    """The whole audio at the diarizer's rate."""
    references: Mapping[str, np.ndarray]
    """Name -> voice print of the reference clips."""
    words: bool
    """Whether the caller asked for word timings (the join needs them anyway)."""
    anonymous: Anonymous = "numbered"


class DiarizationService:
    """Speaker turns and reference voice prints, with the local diarizer (None: not installed)."""

    def __init__(
        self,
        runner: DiarizationRunner | None,
        settings: DiarizationSettings,
        decoding: DecodePool,
    ) -> None:
        self.runner = runner
        self._settings = settings
        self._decoding = decoding

    @property
    def available(self) -> bool:
        return self.runner is not None

    def require(self) -> DiarizationRunner:
        """Raises ServiceUnavailable (503): no local diarizer, with the install hint."""
        if self.runner is None:
            raise ServiceUnavailable(INSTALL_HINT)
        return self.runner

    async def reference_clips(
        self, references: Mapping[str, bytes], limits: ReferenceLimits
    ) -> dict[str, AudioClip]:
        """Each reference clip decoded and checked, by its name as given (embed them with
        ``voices`` once the request's own audio has passed its checks).

        Raises:
            InvalidRequest: too many clips, an empty name, undecodable audio, a clip too short
                or too long. ServiceUnavailable: no diarizer.
        """
        if len(references) > limits.max_count:
            raise InvalidRequest(
                f"At most {limits.max_count} speaker references are supported, "
                f"got {len(references)}",
                field=limits.field,
            )
        self.require()
        found: dict[str, AudioClip] = {}
        for name, data in references.items():
            if not name.strip():
                raise InvalidRequest("A speaker reference needs a name.", field=limits.field)
            clip = await self.decode(data, field=f"{limits.field}.{name}")
            if not limits.min_seconds <= clip.duration <= limits.max_seconds:
                raise InvalidRequest(
                    f"Speaker reference '{name}' is {clip.duration:.1f} s long; each must be "
                    f"{limits.min_seconds:g} to {limits.max_seconds:g} s.",
                    field=limits.field,
                )
            found[name] = clip
        return found

    async def voices(
        self, clips: Mapping[str, AudioClip], limits: ReferenceLimits
    ) -> dict[str, np.ndarray]:
        """Each reference clip's voice print, by name, stripped (the runner remembers recent
        ones, so a reference sent again is not embedded again).

        Raises:
            InvalidRequest: no speech in a clip. ServiceUnavailable: no diarizer.
        """
        runner = self.require()
        found: dict[str, np.ndarray] = {}
        for name, clip in clips.items():
            try:
                found[name.strip()] = await runner.embed(clip)
            except ValidationFailed as exc:
                raise InvalidRequest(f"{exc.message} ('{name}')", field=limits.field) from None
        return found

    async def decode(
        self, data: Source, *, field: str, seconds: float = 0.0, limit: float | None = None
    ) -> AudioClip:
        """The whole audio at the diarizer's rate, decoded once into one array (``seconds``:
        the measured duration, to size it; decoding stops a second past ``limit``).

        Raises:
            InvalidRequest: empty or undecodable audio. Overloaded: the decode pool is full.
        """
        if isinstance(data, bytes | bytearray) and not data:
            raise InvalidRequest("The audio is empty.", field=field)
        rate = self.require().sample_rate
        try:
            clip: AudioClip = await self._decoding.run(decode_whole, data, rate, seconds, limit)
        except ValidationFailed as exc:
            raise InvalidRequest(exc.message, field=field) from None
        return clip

    async def labelled(
        self, plan: DiarizationPlan, segments: AsyncIterator[Segment]
    ) -> AsyncIterator[Segment]:
        """``segments`` cut and labelled by speaker, each as soon as it is transcribed.

        The diarizer runs first, while the engine detects the language (the segments are lazy:
        none is decoded until asked for); then each segment is labelled as it comes, so the
        first comes after the diarization plus the first window's decoding instead of after
        the whole transcription. On an idle core senko runs at RTF ~0.05, well ahead of
        Whisper; on a crowded one it can be slower than the transcription (a 48 s conversation,
        load average ~8, the first request, loading senko included: first segment at 33 s,
        done at 36 s; plain 3.5 s / 6.5 s), where running both at once and holding segments
        until the turns are known would start sooner (not done; bench/diarization.py measures
        first-segment times).
        """
        try:
            diarization = await self.diarize(plan)
            # Off the loop: sorting the turns, then each segment's words (an hour of audio:
            # ~10,000 words).
            names = await run_in_thread(self.speaker_names, diarization, plan)
            async for segment in segments:
                for piece in await run_in_thread(names.label, segment):
                    yield piece
        finally:
            close = getattr(segments, "aclose", None)  # a generator or an engine's SlotStream
            if close is not None:
                await close()

    async def diarize(self, plan: DiarizationPlan) -> Diarization:
        return await self.require().diarize(plan.audio)

    def speaker_names(self, diarization: Diarization, plan: DiarizationPlan) -> SpeakerNames:
        """The labeller of one transcription's segments."""
        return SpeakerNames(diarization, plan, self._settings.match_threshold)

    def label(
        self, segments: Sequence[Segment], diarization: Diarization, plan: DiarizationPlan
    ) -> list[Segment]:
        """The segments cut at speaker changes, each with its speaker's name (blocking:
        async callers run it with ``voxserve.offload``)."""
        names = self.speaker_names(diarization, plan)
        return [piece for segment in segments for piece in names.label(segment)]


class SpeakerNames:
    """Cuts one transcription's segments at speaker changes and names each piece: the
    reference name of its speaker, else an anonymous one in order of first appearance."""

    def __init__(self, diarization: Diarization, plan: DiarizationPlan, threshold: float) -> None:
        self._turns = TurnIndex(diarization.turns)
        self._plan = plan
        self._names = name_speakers(diarization, plan.references, threshold)
        self._anonymous: dict[str, str] = {}

    def label(self, segment: Segment) -> list[Segment]:
        out = []
        for piece in split_by_speaker([segment], self._turns):
            label = piece.speaker or ""
            name = self._names.get(label)
            if name is None:
                style = self._plan.anonymous
                name = self._anonymous.setdefault(
                    label, anonymous_name(len(self._anonymous), style)
                )
            words = piece.words if self._plan.words else None
            out.append(replace(piece, speaker=name, words=words))
        return out


def local_diarizer(
    service: DiarizationService | None,
    engine: STTHandle,
    *,
    diarize: bool,
    references: bool,
    field: str,
) -> DiarizationService | None:
    """The service when voxserve's diarizer labels the speakers (the engine cannot, or
    references were given); None when nobody diarizes or the engine does it itself.

    Raises:
        InvalidRequest: references without ``diarize``. Unsupported: no diarizer installed,
            or an engine without word timestamps.
    """
    if references and not diarize:
        raise InvalidRequest(f"{field} needs diarize=true.", field=field)
    if not diarize or (engine.capabilities.diarization and not references):
        return None
    if service is None or not service.available:
        raise Unsupported(INSTALL_HINT, field="diarize")
    if not engine.capabilities.word_timestamps:
        raise Unsupported(
            f"Diarization needs word timestamps, which the '{engine.name}' engine does not "
            "give: use faster-whisper (voxserve models pull faster-whisper-base).",
            field="model",
        )
    return service


def decode_whole(
    data: Source, sample_rate: int, seconds: float = 0.0, limit: float | None = None
) -> AudioClip:
    """The whole audio as one clip (blocking: run it on the decode pool), written chunk by
    chunk into one array sized from ``seconds`` (grown when the container declared less), so
    the peak is about one copy of the PCM, not its chunks plus their concatenation. Past
    ``limit`` seconds (plus one) decoding stops: the caller refuses the length."""
    samples = np.empty(round(seconds * sample_rate) + sample_rate, dtype=np.float32)
    filled = 0
    stop = None if limit is None else round((limit + 1) * sample_rate)
    for chunk in iter_decode(data, sample_rate=sample_rate, chunk_seconds=10.0):
        if filled + len(chunk) > len(samples):
            grown = np.empty(max(2 * len(samples), filled + len(chunk)), dtype=np.float32)
            grown[:filled] = samples[:filled]
            samples = grown
        samples[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
        if stop is not None and filled > stop:
            break
    return AudioClip(samples[:filled], sample_rate)


async def windows_of(
    clip: AudioClip, sample_rate: int, window_seconds: float
) -> tuple[AudioClip, float, AsyncGenerator[Samples, None] | None]:
    """The transcriber's windows cut from the already decoded ``clip`` (views, no copy; resampled
    window by window when the engine wants another rate): the first window, the duration, the
    rest (None when the first holds everything), as ``TranscriptionService`` takes them from
    its decoder."""
    size = round(window_seconds * clip.sample_rate)
    first = await _at_rate(clip.samples[:size], clip.sample_rate, sample_rate)
    if len(clip.samples) <= size:
        return AudioClip(first, sample_rate), clip.duration, None

    async def rest() -> AsyncGenerator[Samples, None]:
        for start in range(size, len(clip.samples), size):
            yield await _at_rate(clip.samples[start : start + size], clip.sample_rate, sample_rate)

    return AudioClip(first, sample_rate), clip.duration, rest()


async def _at_rate(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    if from_rate == to_rate:
        return samples
    return await run_in_thread(resample, samples, from_rate, to_rate)


def split_by_speaker(
    segments: Sequence[Segment], turns: Sequence[SpeakerTurn] | TurnIndex
) -> list[Segment]:
    """Each segment cut into runs of words of one speaker (engine labels in ``speaker``)."""
    index = turns if isinstance(turns, TurnIndex) else TurnIndex(turns)
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            speaker = index.speaker_at(segment.start, segment.end)
            out.append(replace(segment, speaker=speaker))
            continue
        run: list[Word] = []
        current: str | None = None
        for word in segment.words:
            speaker = index.speaker_at(word.start, word.end)
            if run and speaker != current:
                out.append(_run_segment(run, current))
                run = []
            run.append(word)
            current = speaker
        out.append(_run_segment(run, current))
    return out


def speaker_at(start: float, end: float, turns: Sequence[SpeakerTurn]) -> str | None:
    """The speaker who holds most of ``[start, end]``, else the nearest turn's (None: no turns).

    One lookup (the turns are sorted each call): ``TurnIndex`` answers many."""
    return TurnIndex(turns).speaker_at(start, end)


class TurnIndex:
    """Speaker turns sorted once, to find who holds each word in O(log n), not O(n).

    The rule: the turn with the longest positive overlap with ``[start, end]``; when none
    overlaps, the turn with an end point (start or end) nearest the middle of ``[start, end]``;
    ties go to the turn given first. Overlaps are found among the turns starting before
    ``end``, back to where no earlier turn reaches past ``start`` (a running maximum of the
    ends), so a word costs its overlapping turns plus one; the nearest end point by bisection
    in all end points, sorted.
    """

    def __init__(self, turns: Sequence[SpeakerTurn]) -> None:
        self._turns = tuple(turns)
        self._by_start = sorted(range(len(self._turns)), key=lambda i: self._turns[i].start)
        self._starts = [self._turns[i].start for i in self._by_start]
        self._reach = list(accumulate((self._turns[i].end for i in self._by_start), max))
        points = sorted((p, i) for i, t in enumerate(self._turns) for p in (t.start, t.end))
        self._points = [p for p, _ in points]
        self._owners = [i for _, i in points]

    def speaker_at(self, start: float, end: float) -> str | None:
        """The speaker of ``[start, end]`` (None: no turns)."""
        if not self._turns:
            return None
        found = self._dominant(start, end)
        if found is None:
            found = self._nearest((start + end) / 2)
        return self._turns[found].speaker

    def _dominant(self, start: float, end: float) -> int | None:
        best, most = None, 0.0
        at = bisect_left(self._starts, end) - 1
        while at >= 0 and self._reach[at] > start:
            index = self._by_start[at]
            turn = self._turns[index]
            overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > most or (best is not None and overlap == most and index < best):
                best, most = index, overlap
            at -= 1
        return best

    def _nearest(self, middle: float) -> int:
        # Distances only grow away from ``middle`` on either side: each side's nearest run of
        # equal distances holds every candidate there.
        points, owners = self._points, self._owners
        best, nearest = len(self._turns), math.inf
        right = bisect_left(points, middle)
        for at, step in ((right - 1, -1), (right, 1)):
            first = None
            while 0 <= at < len(points):
                distance = abs(middle - points[at])
                if first is not None and distance != first:
                    break
                first = distance
                if distance < nearest or (distance == nearest and owners[at] < best):
                    best, nearest = owners[at], distance
                at += step
        return best


def _run_segment(words: list[Word], speaker: str | None) -> Segment:
    spaced = any(w.word[:1].isspace() for w in words)
    text = "".join(w.word for w in words) if spaced else " ".join(w.word for w in words)
    return Segment(text.strip(), words[0].start, words[-1].end, tuple(words), speaker=speaker)


def name_speakers(
    diarization: Diarization, references: Mapping[str, np.ndarray], threshold: float
) -> dict[str, str]:
    """Engine label -> reference name, one to one, best similarities first, above
    ``threshold``."""
    pairs = sorted(
        (
            (cosine(voice, ref), label, name)
            for label, voice in diarization.voices.items()
            for name, ref in references.items()
        ),
        reverse=True,
    )
    named: dict[str, str] = {}
    for similarity, label, name in pairs:
        if similarity < threshold:
            break
        if label not in named and name not in named.values():
            named[label] = name
    return named


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / denominator if denominator else 0.0


def anonymous_name(index: int, style: Anonymous) -> str:
    """``speaker_1``, ``speaker_2``... or OpenAI's ``A``, ``B``... (``AA`` after ``Z``)."""
    if style == "numbered":
        return f"speaker_{index + 1}"
    letters = string.ascii_uppercase
    return letters[index] if index < 26 else letters[index // 26 - 1] + letters[index % 26]
