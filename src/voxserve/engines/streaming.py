"""Streaming speech-to-text: the protocol a realtime session drives, and an implementation over
any batch recogniser (faster-whisper) with the LocalAgreement policy.

A session hands its stream the audio that arrived since the last call: ``step`` decodes and
returns only the words that are final; ``commit`` ends the current segment (a turn end or a
flush) with every word heard. Under load the caller calls ``step`` less often with more audio
each time. Whisper pads every decode to 30 s, so one decode costs about the same for 2 s or
25 s of audio: a step that brings much audio (the session waited for the engine) confirms the
words one decode heard whole instead of waiting for a second decode to agree, and a step never
decodes more than one encoder pass of audio (the rest waits, ``backlog_seconds``, for the next
step). So each decode moves a session up to ~25 s on, its cost stays fixed, and a session's lag
stays bounded while the sessions' decodes fit in that time (they take turns on the engine).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.agreement import LocalAgreement
from voxserve.engines.checkpoints import DecodeAbandoned, abandonable
from voxserve.engines.protocol import Segment, TranscriptionInfo, TranscriptionOptions, Word
from voxserve.errors import Unsupported

MIN_DECODE_S = 0.3
"""A window shorter than this is not worth a decode (Whisper hallucinates on near-silence)."""
DECODE_LIMIT_S = 28.0
"""Most audio one decode sees: one Whisper encoder pass is 30 s (keep a margin); more would
cost a second pass, slowing the very session that is behind."""
SETTLE_AFTER_S = 2.0
"""A step bringing at least this much new audio (the session waited for a loaded engine)
confirms words from this one decode (``LocalAgreement.settle``)."""
SETTLE_TAIL_S = 1.0
"""Words ending this close to the window's end are not settled: the audio may cut them."""
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
class BackloggedStream(Protocol):
    """A stream that may keep part of a step's audio for the next step (so that each step
    costs one decode); the session steps again while there is some."""

    @property
    def backlog_seconds(self) -> float:
        """Audio received but not yet decoded."""


@runtime_checkable
class PacedStream(Protocol):
    """A stream that wants its audio at its own pace rather than the session's decode step (a
    native streaming model, local or remote, whose step costs no batch decode)."""

    @property
    def step_seconds(self) -> float:
        """New audio worth a step."""


@runtime_checkable
class AbandonableStream(Protocol):
    """A stream whose running step can be abandoned part-way (a commit became due: it decodes
    the whole window again, so the step's words would only be heard twice)."""

    def abandon_step(self) -> None:
        """Make the step now running (if any) return at its next checkpoint with no words;
        its audio stays for the next call. Thread-safe; no effect when no step runs."""


@runtime_checkable
class ListeningStream(Protocol):
    """A stream whose words may arrive with no new audio (a remote model still working on audio
    already sent): while ``awaiting``, the session steps it with no audio every
    ``step_seconds``, so text that comes after the client's last chunk reaches the client
    then, not at the next flush or end."""

    @property
    def awaiting(self) -> bool:
        """Audio was sent whose text may still come."""


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

    Invariants: the window holds the open segment's audio (at most ``max_window_s`` of it
    after a step: past that, the confirmed words so far become a segment and the window
    restarts after them; a decode sees at most ``decode_limit_s``); audio beyond that waits
    in the backlog, never dropped undecoded; confirmed words are never revised; once
    detected, the language is fixed.
    """

    def __init__(
        self,
        decode: Decode,
        sample_rate: int,
        options: TranscriptionOptions,
        *,
        max_window_s: float = 20.0,
        decode_limit_s: float = DECODE_LIMIT_S,
    ) -> None:
        self._decode = decode
        self._rate = sample_rate
        self._options = replace(options, word_timestamps=True)
        self._language = options.language
        self._max_window = int(max_window_s * sample_rate)
        self._limit = max(int(decode_limit_s * sample_rate), self._max_window + sample_rate)
        self._window = np.zeros(0, dtype=np.float32)
        self._backlog = np.zeros(0, dtype=np.float32)
        self._window_start = 0.0
        self._received = 0
        self._agreement = LocalAgreement()
        self._context = options.prompt or ""
        self._abandon = threading.Event()
        self._stepping = False
        self._stepping_lock = threading.Lock()

    @property
    def audio_seconds(self) -> float:
        return self._received / self._rate

    @property
    def window_seconds(self) -> float:
        """Audio the next decode will see (at most ``decode_limit_s``)."""
        return len(self._window) / self._rate

    @property
    def backlog_seconds(self) -> float:
        return len(self._backlog) / self._rate

    def step(self, audio: Samples) -> StreamUpdate:
        """One decode at most (the session's turn on the engine), over the window and as much
        new audio as fits in it; no words when the step is abandoned."""
        new = self._fill(audio)
        if len(self._window) < MIN_DECODE_S * self._rate:
            return StreamUpdate(language=self._language)
        full = len(self._window) > self._max_window
        try:
            hypothesis = self._abandonable_hypothesis()
        except DecodeAbandoned:
            return StreamUpdate(language=self._language)
        words = self._confirm(hypothesis, settle=full or new >= SETTLE_AFTER_S)
        segment = None
        if full:
            segment = self._end_segment()
            self._restart_window()
        return StreamUpdate(tuple(words), self._language, segment)

    def commit(self, audio: Samples) -> StreamUpdate:
        """Every word of the audio, backlog included (a long backlog takes a decode per
        window), as one segment."""
        words: list[Word] = []
        self._fill(audio)
        while len(self._backlog):  # a window's worth at a time, each settled
            words += self._confirm(self._hypothesis(), settle=True)
            self._restart_window()
            self._fill(np.zeros(0, np.float32))
        hypothesis = self._hypothesis() if len(self._window) >= MIN_DECODE_S * self._rate else None
        words += self._agreement.take_all(hypothesis)
        segment = self._end_segment()
        self._trim_to(self.audio_seconds)
        self._agreement.forget_seam()
        return StreamUpdate(tuple(words), self._language, segment)

    def abandon_step(self) -> None:
        with self._stepping_lock:
            if self._stepping:
                self._abandon.set()

    def _abandonable_hypothesis(self) -> list[Word]:
        with self._stepping_lock:
            self._stepping = True
            self._abandon.clear()
        try:
            with abandonable(self._abandon):
                return self._hypothesis()
        finally:
            with self._stepping_lock:
                self._stepping = False

    def _fill(self, audio: Samples) -> int:
        """Take ``audio`` into the backlog, then move into the window what fits in one
        decode; returns the samples moved."""
        if len(audio):
            self._backlog = np.concatenate([self._backlog, audio.astype(np.float32, copy=False)])
            self._received += len(audio)
        room = max(self._limit - len(self._window), 0)
        moved, self._backlog = self._backlog[:room], self._backlog[room:]
        if len(moved):
            self._window = np.concatenate([self._window, moved])
        return len(moved)

    def _confirm(self, hypothesis: list[Word], *, settle: bool) -> list[Word]:
        if not settle:
            return self._agreement.insert(hypothesis)
        window_end = self._window_start + len(self._window) / self._rate
        return self._agreement.settle(hypothesis, window_end - SETTLE_TAIL_S)

    def _restart_window(self) -> None:
        """Cut the window after the last confirmed word (when nothing was confirmed, keep
        only its newest ``SETTLE_TAIL_S``: the decode heard no whole word before it)."""
        self._trim_to(self._agreement.last_end)
        if len(self._window) >= self._max_window:  # leaves the next decode room
            end = self._window_start + len(self._window) / self._rate
            self._trim_to(end - SETTLE_TAIL_S)

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


def stream_over_batch(
    name: str,
    decode: Decode,
    *,
    word_timestamps: bool,
    sample_rate: int,
    options: TranscriptionOptions,
    needs: str = "word timestamps",
) -> AgreementStream:
    """LocalAgreement over a batch recogniser's decodes, which must give word timestamps.

    Raises:
        Unsupported: they do not (``needs`` says what would let ``name`` stream).
    """
    if not word_timestamps:
        raise Unsupported(
            f"{name} cannot transcribe in realtime: streaming needs {needs}.", field="model"
        )
    return AgreementStream(decode, sample_rate, options)


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
