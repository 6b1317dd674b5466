"""Streaming speech-to-text: the protocol a realtime session drives, and an implementation over
any batch recogniser (faster-whisper) with the LocalAgreement policy.

A session hands its stream the audio that arrived since the last call: ``step`` decodes and
returns only the words that are final; ``commit`` ends the current segment (a turn end or a
flush) with every word heard. Under load the caller simply calls ``step`` less often with more
audio each time, so a session never falls further behind than one decode; the window the model
sees stays bounded, so step time and memory do not grow with the session's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.agreement import LocalAgreement
from voxserve.engines.protocol import Segment, TranscriptionInfo, TranscriptionOptions, Word

MIN_DECODE_S = 0.3
"""A window shorter than this is not worth a decode (Whisper hallucinates on near-silence)."""
PROMPT_CHARS = 200
"""Previous text given to the model as context, so a new window continues the sentence."""


@dataclass(frozen=True)
class StreamUpdate:
    """What one call found; times are seconds since the session's first sample."""

    words: tuple[Word, ...] = ()
    """Words confirmed by this call, in order (never revised later)."""
    language: str | None = None
    """The session's language once detected (or as fixed by the caller)."""
    segment: Segment | None = None
    """A finished segment, when this call ended one."""


@runtime_checkable
class STTStream(Protocol):
    """One session's recogniser state. Methods block: run them off the event loop, one at a
    time per stream. Audio is mono float32 at the engine's sample rate."""

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received so far."""

    def step(self, audio: Samples) -> StreamUpdate:
        """Append ``audio``, decode the window, return the newly confirmed words."""

    def commit(self, audio: Samples) -> StreamUpdate:
        """Append ``audio`` and end the segment: every word heard is confirmed and returned,
        with the segment they form."""


@runtime_checkable
class ClosingStream(Protocol):
    """A stream that holds something to release when its session ends (a remote socket)."""

    def close(self) -> None:
        """Release it (blocking; safe while a step of the stream runs in another thread)."""


@runtime_checkable
class StreamingSTTEngine(Protocol):
    """An engine that can open streams (a native streaming model, or a batch model through
    ``AgreementStream``)."""

    name: str

    def open_stream(self, options: TranscriptionOptions) -> STTStream:
        """A new stream for one session (``options.language`` None: detect it once)."""


Decode = Callable[[AudioClip, TranscriptionOptions], tuple[TranscriptionInfo, Iterator[Segment]]]


class AgreementStream:
    """Streaming over a batch recogniser: decode the growing window each step and confirm the
    words two successive decodes agree on.

    Invariants: the window holds the audio after the last confirmed word (at most
    ``max_window_s`` of it: past that, the confirmed words so far become a segment and the
    window restarts after them); confirmed words are never revised; once detected, the
    language is fixed.
    """

    def __init__(
        self,
        decode: Decode,
        sample_rate: int,
        options: TranscriptionOptions,
        *,
        max_window_s: float = 20.0,
    ) -> None:
        self._decode = decode
        self._rate = sample_rate
        self._options = replace(options, word_timestamps=True)
        self._language = options.language
        self._max_window = int(max_window_s * sample_rate)
        self._window = np.zeros(0, dtype=np.float32)
        self._window_start = 0.0
        self._received = 0
        self._agreement = LocalAgreement()
        self._context = options.prompt or ""

    @property
    def audio_seconds(self) -> float:
        return self._received / self._rate

    @property
    def window_seconds(self) -> float:
        """Audio the next decode will see (bounded by ``max_window_s`` plus one step)."""
        return len(self._window) / self._rate

    def step(self, audio: Samples) -> StreamUpdate:
        self._append(audio)
        if len(self._window) < MIN_DECODE_S * self._rate:
            return StreamUpdate(language=self._language)
        words = self._agreement.insert(self._hypothesis())
        segment = None
        if len(self._window) > self._max_window:
            segment = self._end_segment()
            self._trim_to(self._agreement.last_end)
            if len(self._window) > self._max_window:  # nothing confirmed: keep the newest half
                self._trim_to(self._window_start + self._max_window / 2 / self._rate)
        return StreamUpdate(tuple(words), self._language, segment)

    def commit(self, audio: Samples) -> StreamUpdate:
        self._append(audio)
        hypothesis = self._hypothesis() if len(self._window) >= MIN_DECODE_S * self._rate else None
        words = self._agreement.take_all(hypothesis)
        segment = self._end_segment()
        self._trim_to(self.audio_seconds)
        self._agreement.forget_seam()
        return StreamUpdate(tuple(words), self._language, segment)

    def _append(self, audio: Samples) -> None:
        if len(audio):
            self._window = np.concatenate([self._window, audio.astype(np.float32, copy=False)])
            self._received += len(audio)

    def _hypothesis(self) -> list[Word]:
        options = replace(self._options, language=self._language, prompt=self._prompt())
        info, segments = self._decode(AudioClip(self._window, self._rate), options)
        words = [w for s in segments for w in segment_words(s)]
        if self._language is None and words:
            self._language = info.language
        offset = self._window_start
        return [replace(w, start=w.start + offset, end=w.end + offset) for w in words]

    def _prompt(self) -> str | None:
        """Only text whose audio has left the window: a prompt repeating the window's own words
        makes Whisper skip them."""
        return self._context[-PROMPT_CHARS:] or None

    def _end_segment(self) -> Segment | None:
        words = self._agreement.pop_segment()
        if not words:
            return None
        text = join_words(words)
        self._context = (self._context + " " + text).strip()[-PROMPT_CHARS:]
        return Segment(text, words[0].start, words[-1].end, tuple(words))

    def _trim_to(self, seconds: float) -> None:
        """Drop the window's audio before ``seconds`` (session time)."""
        cut = round((seconds - self._window_start) * self._rate)
        cut = min(max(cut, 0), len(self._window))
        self._window = self._window[cut:].copy()
        self._window_start += cut / self._rate


def segment_words(segment: Segment) -> tuple[Word, ...]:
    """A segment's words; without word timestamps, its words spread evenly over its time."""
    if segment.words is not None:
        return segment.words
    tokens = segment.text.split()
    if not tokens:
        return ()
    share = (segment.end - segment.start) / len(tokens)
    return tuple(
        Word(token, segment.start + i * share, segment.start + (i + 1) * share)
        for i, token in enumerate(tokens)
    )


def join_words(words: tuple[Word, ...] | list[Word]) -> str:
    """Whisper's words carry their leading space; others may not."""
    text = "".join(w.word if w.word[:1].isspace() else " " + w.word for w in words)
    return " ".join(text.split())
