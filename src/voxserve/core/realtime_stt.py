"""A realtime transcription session: audio in as it is spoken, words out as they become final.

Framework-free: the WebSocket adapters (Mistral's and OpenAI's protocols) turn client messages
into calls here and the events this yields into their own messages.

Scheduling. One decoder task per session runs the stream's blocking calls through ``run``,
which holds an engine slot; slots are granted first come, first served, so with n sessions on
one slot each session gets one decode in every n, and none starves. Audio that arrives while a
session waits joins its next call: the step lengthens by itself to about n decode times, which
is what bounds the lag (a stream decodes at most one window per call, keeping the rest as
backlog for the next turn, so a behind session neither costs more per decode nor holds the
slot for several). What a turn does is chosen when the slot is granted, not when it was asked
for: a step still waiting when a flush, turn end or end arrives becomes that commit, so the
final text does not wait for a second turn; and a flush or end abandons the step already
running at its next stage (``AbandonableStream``: faster-whisper stops before its next encoder
pass, generation or alignment), since the commit decodes that window again: the final text
waits for about one decode, not two. A turn end found by the voice-activity detector does not
abandon the step (it may be about to confirm the words before the pause). Voice activity
(when turn detection is on) is judged on every chunk; turn ends that pile up while the engine
is busy share one commit decode (its words are split at the turns' boundaries). A stream whose
text may come with no new audio (a remote model, ``ListeningStream``) is stepped with none
every step while it awaits text, so words the model sends after the client's last chunk are
not held until the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from voxserve.audio.pcm import PCMDecoder, PCMEncoding
from voxserve.audio.types import Samples
from voxserve.core.turns import TurnDetector, TurnEvent, TurnSettings
from voxserve.engines.protocol import Segment, Word
from voxserve.engines.streaming import (
    AbandonableStream,
    BackloggedStream,
    ClosingStream,
    ListeningStream,
    PacedStream,
    StreamUpdate,
    STTStream,
    join_words,
)
from voxserve.errors import InvalidRequest, VoxError
from voxserve.offload import run_in_thread

ENGINE_RATE = 16000
MIN_STEP_S = 0.5
"""Shortest stretch of new audio worth a decode on CPU (a decode re-reads the whole window)."""


@dataclass(frozen=True)
class AudioInputFormat:
    encoding: PCMEncoding = "pcm_s16le"
    sample_rate: int = 16000


@dataclass(frozen=True)
class RealtimeSTTConfig:
    """A session's settings; they lock once audio starts."""

    audio_format: AudioInputFormat = field(default_factory=AudioInputFormat)
    language: str | None = None
    """ISO-639-1; None detects it once, from the first words."""
    context_bias: tuple[str, ...] = ()
    target_delay_ms: int = 480
    """How far behind the speech the text may run; the decode step follows it."""
    turn_detection: TurnSettings | None = field(default_factory=TurnSettings)
    """None: no voice-activity detection (segments end at flush and end only)."""


@dataclass(frozen=True)
class LanguageDetected:
    language: str


@dataclass(frozen=True)
class TextDelta:
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class SegmentDone:
    """A segment ended: at a turn end, a flush, the end, or a full window. ``empty``: a commit
    that heard no words (OpenAI's protocol still completes its item; Mistral's sends nothing)."""

    segment: Segment
    empty: bool = False


@dataclass(frozen=True)
class TranscriptionDone:
    text: str
    language: str | None
    segments: tuple[Segment, ...]
    audio_seconds: float


@dataclass(frozen=True)
class SessionFailed:
    error: VoxError


RealtimeSTTEvent = (
    LanguageDetected | TextDelta | SegmentDone | TurnEvent | TranscriptionDone | SessionFailed
)
Step = Callable[[Samples], StreamUpdate]
Runner = Callable[[Step, Samples], Awaitable[StreamUpdate]]
"""Runs one blocking stream call off the event loop, holding the engine's slot."""
StreamFactory = Callable[[RealtimeSTTConfig], STTStream]
"""Opens the session's stream when audio starts (once its settings are final)."""
VoiceActivity = Callable[[Samples], Awaitable[list[float]]]
"""Speech probabilities of the complete 32 ms frames in a chunk (16 kHz), off the loop."""


class TranscriptionSession:
    """The state machine of one realtime transcription.

    Invariants: events come in order (``LanguageDetected`` before the first ``TextDelta``; a
    ``SegmentDone`` after the deltas of its words; ``TranscriptionDone`` last); settings change
    only before the first audio; after ``end`` no audio is taken.
    """

    def __init__(
        self,
        stream: STTStream | StreamFactory,
        run: Runner,
        config: RealtimeSTTConfig,
        *,
        voice_activity: VoiceActivity | None = None,
        frame_seconds: float = 0.032,
        check: Callable[[RealtimeSTTConfig], None] | None = None,
    ) -> None:
        self._stream: STTStream | None = stream if isinstance(stream, STTStream) else None
        self._open_stream = stream if not isinstance(stream, STTStream) else None
        self._run = run
        self._check = check
        """Raises what the engine cannot do with a config (a ``session.update`` gets it)."""
        self._config = config
        self._voice_activity = voice_activity
        self._frame_seconds = frame_seconds
        self._events: asyncio.Queue[RealtimeSTTEvent | None] = asyncio.Queue()
        self._open: list[Samples] = []
        """Audio not yet decoded, of the segment still open."""
        self._closed: deque[Samples] = deque()
        """Audio not yet decoded of segments that must end (flush, turn end, end), oldest first."""
        self._lock = threading.Lock()
        """Guards ``_open`` and ``_closed``: the engine's thread takes its work from them."""
        self._wake = asyncio.Event()
        self._ended = False
        self._started = False
        self._language: str | None = config.language
        self._language_sent = False
        self._segments: list[Segment] = []
        self._any_words_sent = False
        self._decoder: PCMDecoder | None = None
        self._turns: TurnDetector | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> RealtimeSTTConfig:
        return self._config

    @property
    def audio_seconds(self) -> float:
        return self._stream.audio_seconds if self._stream is not None else 0.0

    @property
    def started(self) -> bool:
        """Audio has started (settings are locked)."""
        return self._started

    def update(self, config: RealtimeSTTConfig) -> None:
        """Raises InvalidRequest once audio has started (settings are locked then), and
        Unsupported for a setting the engine cannot follow (the settings stay as they were)."""
        if self._started:
            raise InvalidRequest("Session settings cannot change once audio has started.")
        if self._check is not None:
            self._check(config)
        self._config = config
        self._language = config.language

    async def append(self, data: bytes) -> None:
        """Take a chunk of raw PCM in the session's audio format.

        Raises:
            InvalidRequest: the session has ended.
        """
        if self._ended:
            raise InvalidRequest("The audio has ended; start a new session for more.")
        self._start()
        assert self._decoder is not None
        samples = self._decoder.decode(data)
        if not len(samples):
            return
        with self._lock:
            self._open.append(samples)
        await self._detect_turns(samples)
        if self._open_seconds() >= self._step_seconds():
            self._wake.set()

    def flush(self) -> None:
        """End the current segment now, with every word heard so far (a step under way is
        abandoned: the client asked for the segment's text now)."""
        if self._started and not self._ended:
            self._close_segment(abandon_step=True)

    def clear(self) -> None:
        """Drop the open segment's audio not yet decoded (words a decode step already
        confirmed stay: they were sent)."""
        with self._lock:
            self._open = []

    def end(self) -> None:
        """No more audio: finish the segment, then ``TranscriptionDone``."""
        if self._ended:
            return
        self._start()
        self._ended = True
        assert self._decoder is not None
        tail = self._decoder.flush()
        if len(tail):
            self._open.append(tail)
        self._close_segment(abandon_step=True)

    async def events(self) -> AsyncIterator[RealtimeSTTEvent]:
        """Every event until ``TranscriptionDone`` or ``SessionFailed``."""
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        """Stop decoding now (the client went away), and release the stream (a remote
        server's socket: closing it first also ends a step waiting on that server)."""
        if isinstance(self._stream, ClosingStream):
            await run_in_thread(self._stream.close)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._stream is None:
            assert self._open_stream is not None
            self._stream = self._open_stream(self._config)
        fmt = self._config.audio_format
        self._decoder = PCMDecoder(fmt.encoding, fmt.sample_rate, ENGINE_RATE)
        if self._config.turn_detection is not None and self._voice_activity is not None:
            self._turns = TurnDetector(self._config.turn_detection, self._frame_seconds)
        self._task = asyncio.create_task(self._decode_loop())

    async def _detect_turns(self, samples: Samples) -> None:
        if self._turns is None or self._voice_activity is None:
            return
        for event in self._turns.feed(await self._voice_activity(samples)):
            self._events.put_nowait(event)
            if event.kind == "end" and not self._ended:
                # the speaker paused: a step under way may be about to confirm words
                self._close_segment(abandon_step=False)

    async def _decode_loop(self) -> None:
        try:
            while True:
                listen = await self._next_wake()
                while listen or self._work_ready():
                    listen = False
                    update, ends = await self._turn()
                    self._publish(update, ends)
                    if self._ended and not self._closed and ends is not None:
                        self._finish()
                        return
        except VoxError as exc:
            self._events.put_nowait(SessionFailed(exc))
            self._events.put_nowait(None)

    async def _next_wake(self) -> bool:
        """Wait for work to be due; True instead when a listening stream is due a step with no
        audio (its text may have come meanwhile)."""
        stream = self._stream
        if isinstance(stream, ListeningStream) and stream.awaiting:
            try:
                await asyncio.wait_for(self._wake.wait(), self._step_seconds())
            except TimeoutError:
                return True
        else:
            await self._wake.wait()
        self._wake.clear()
        return False

    async def _turn(self) -> tuple[StreamUpdate, list[float] | None]:
        """One turn on the engine; its work is taken once the slot is granted (in the
        engine's thread), so it is the newest: a commit due by then wins over the step."""
        taken: list[list[float] | None] = []

        def work(_: Samples) -> StreamUpdate:
            with self._lock:
                audio, ends = self._take_work()
            taken.append(ends)
            assert self._stream is not None
            if ends is not None:
                return self._stream.commit(audio)
            listening = isinstance(self._stream, ListeningStream)
            if not len(audio) and not self._backlog() and not listening:
                return StreamUpdate()  # cleared meanwhile: nothing new to decode
            return self._stream.step(audio)

        update = await self._run(work, _joined([]))
        return update, taken[0] if taken else None

    def _work_ready(self) -> bool:
        """A commit is due, enough new audio for a decode step has arrived, or the stream
        kept audio back for another step."""
        with self._lock:
            due = bool(self._closed) or self._open_seconds() >= self._step_seconds()
        return due or self._backlog() > 0

    def _backlog(self) -> float:
        stream = self._stream
        return stream.backlog_seconds if isinstance(stream, BackloggedStream) else 0.0

    def _take_work(self) -> tuple[Samples, list[float] | None]:
        """The audio of every segment waiting to end, for one commit, with the session time at
        which each of them ends; else all the open audio to step on (and None)."""
        if not self._closed:
            audio, self._open = _joined(self._open), []
            return audio, None
        at, ends = self.audio_seconds, []
        for piece in self._closed:
            at += len(piece) / ENGINE_RATE
            ends.append(at)
        audio = _joined(list(self._closed))
        self._closed.clear()
        return audio, ends

    def _publish(self, update: StreamUpdate, ends: list[float] | None = None) -> None:
        """``ends``: a commit's segment boundaries (one segment ends at each)."""
        if update.language and not self._language_sent:
            self._language = update.language
        if update.words or update.segment:
            self._send_language()
        if update.words:
            text = join_words(update.words)
            lead = " " if self._segments or self._any_words_sent else ""
            self._events.put_nowait(TextDelta(lead + text, update.words))
            self._any_words_sent = True
        segments = [update.segment] if ends is None else split_at(update.segment, ends)
        for segment in segments:
            if segment is None:
                continue
            if segment.text:
                self._segments.append(segment)
            # a commit that heard no words still closes its segment (empty)
            self._events.put_nowait(SegmentDone(segment, empty=not segment.text))

    def _send_language(self) -> None:
        if not self._language_sent and self._language:
            self._language_sent = True
            self._events.put_nowait(LanguageDetected(self._language))

    def _finish(self) -> None:
        if self._turns is not None and (event := self._turns.finish()) is not None:
            self._events.put_nowait(event)
        self._send_language()
        text = " ".join(s.text for s in self._segments)
        done = TranscriptionDone(text, self._language, tuple(self._segments), self.audio_seconds)
        self._events.put_nowait(done)
        self._events.put_nowait(None)

    def _close_segment(self, *, abandon_step: bool) -> None:
        """The open audio becomes a segment to commit (an empty one still commits: the words
        already decoded but not yet confirmed end there). ``abandon_step``: stop a step under
        way at its next stage, since the commit decodes its window again anyway."""
        with self._lock:
            self._closed.append(_joined(self._open))
            self._open = []
        if abandon_step and isinstance(self._stream, AbandonableStream):
            self._stream.abandon_step()
        self._wake.set()

    def _open_seconds(self) -> float:
        return sum(len(p) for p in self._open) / ENGINE_RATE

    def _step_seconds(self) -> float:
        if isinstance(self._stream, PacedStream):
            return self._stream.step_seconds
        return max(MIN_STEP_S, self._config.target_delay_ms / 1000)


def split_at(segment: Segment | None, ends: list[float]) -> list[Segment]:
    """One segment per boundary in ``ends``: a word goes to the first whose end is after its
    middle; a boundary without words gets an empty segment at its time."""
    if len(ends) == 1:
        return [segment if segment is not None else Segment("", ends[0], ends[0], ())]
    words = list(segment.words or ()) if segment is not None else []
    if segment is not None and segment.words is None:
        return [*(Segment("", at, at, ()) for at in ends[:-1]), segment]
    groups: list[list[Word]] = [[] for _ in ends]
    for word in words:
        middle = (word.start + word.end) / 2
        index = next((i for i, at in enumerate(ends) if middle <= at), len(ends) - 1)
        groups[index].append(word)
    return [
        Segment(join_words(group), group[0].start, group[-1].end, tuple(group))
        if group
        else Segment("", at, at, ())
        for group, at in zip(groups, ends, strict=True)
    ]


def _joined(pieces: list[Samples]) -> Samples:
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
