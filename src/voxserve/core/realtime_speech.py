"""Realtime speech: text arrives in fragments (as an LLM streams it), audio goes out as soon as a
piece is ready to speak.

``TextStream`` cuts the fragments into clauses (``responsive``) or sentences (``long_form``);
each piece is prepared and spoken through ``SpeechService`` (the same voice resolution and
engine scheduler as HTTP speech), one after another, by one speaker task per session. Each
piece's credits are reserved before its audio is made (a balance that cannot pay ends the
session with ``SpeechFailed`` naming it). A piece is paid once its first audio reached the
client (the adapter reports it through ``delivered``), so a client that hangs up pays for the
pieces it received, as over REST; the rest is refunded when the session closes, in the same
transaction as the session's one usage record (in characters and credits). A ``ref_audio``
voice is cloned once per session (at ``session.update``) and its state reused for every piece.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voxserve.audio.encode import make_stream_encoder
from voxserve.audio.resample import StreamResampler
from voxserve.audio.types import AudioFormat, Samples
from voxserve.core.realtime import SessionGate
from voxserve.core.speech import (
    ClonedVoice,
    PreparedSpeech,
    SpeechRequest,
    SpeechService,
    cloned_voice,
)
from voxserve.core.text_stream import StreamingMode, TextStream
from voxserve.core.usage import Metering, UsageService
from voxserve.errors import InvalidRequest, VoxError
from voxserve.offload import run_in_thread

SPEECH_ENDPOINT = "realtime_speech"
PCM_RATE = 24000
"""Mistral's realtime ``pcm``: float32 little-endian at 24 kHz."""


@dataclass(frozen=True)
class SpeechSessionConfig:
    voice: str | None = None
    """A voice id (preset, hosted alias or saved voice); None: the engine's best preset."""
    ref_audio: bytes | None = None
    """A voice sample to clone instead of ``voice``."""
    response_format: AudioFormat = "pcm"
    streaming_mode: StreamingMode = "responsive"


@dataclass(frozen=True)
class AudioChunk:
    data: bytes
    credits: int = 0
    """Credits this chunk delivers: its piece's characters on the piece's first chunk, else 0."""


@dataclass(frozen=True)
class SpeechDone:
    characters: int
    """Characters spoken (tags excluded): the session's usage and credits."""


@dataclass(frozen=True)
class SpeechFailed:
    error: VoxError


class ClientGone(VoxError):
    """The client left before ``speech.audio.done``: recorded as 499, like a REST hang-up."""

    status = 499
    code = "client_closed"


SpeechEvent = AudioChunk | SpeechDone | SpeechFailed


class SpeechSession:
    """One session's text in, audio out.

    Invariants: pieces are spoken in order, one at a time; settings lock with the first text;
    ``SpeechDone`` comes last, after ``end`` and every piece; after ``end`` no text is taken.
    """

    def __init__(
        self, speech: SpeechService, usage: UsageService, owner_id: str, model: str | None
    ) -> None:
        self._speech = speech
        self._usage = usage
        self.owner_id = owner_id
        self._model = model
        self.config = SpeechSessionConfig()
        self._text: TextStream | None = None
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._events: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self.characters = 0
        self.engine: str | None = None
        self.reserved = 0
        """Credits taken from the balance so far (each piece's, before its audio)."""
        self._delivered = 0
        self._forgiven = 0
        self._voice_state: ClonedVoice | None = None
        self.failure: VoxError | None = None
        self.done = False

    async def update(self, config: SpeechSessionConfig) -> None:
        """Check and take new settings (before the first text).

        Raises:
            InvalidRequest: text has started. VoiceNotFound: an unknown voice. Unsupported:
                cloning asked of an engine that cannot.
        """
        if self._text is not None:
            raise InvalidRequest("Session settings cannot change once text has started.")
        self._voice_state = None
        # Resolves the voice (errors now, not mid-speech) and clones a ref_audio, once.
        prepared = await self._prepare("Hello.", config)
        self._voice_state = cloned_voice(prepared) if config.ref_audio else None
        self.config = config

    def delivered(self, chunk: AudioChunk) -> None:
        """``chunk`` reached the client: its credits are now owed."""
        self._delivered += chunk.credits

    @property
    def charged(self) -> int:
        """Credits the session costs: pieces delivered, less a piece our engine failed in."""
        return max(0, self._delivered - self._forgiven)

    def append(self, text: str) -> None:
        self._add(self._stream().add(text))

    def flush(self, text: str = "") -> None:
        stream = self._stream()
        self._add([*stream.add(text), *stream.flush()])

    def end(self) -> None:
        if not self._ended:
            self.flush()
            self._ended = True
            self._pieces.put_nowait(None)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _stream(self) -> TextStream:
        if self._ended:
            raise InvalidRequest("The text has ended; start a new session for more.")
        if self._text is None:
            self._text = TextStream(self.config.streaming_mode)
            self._task = asyncio.create_task(self._speak_all())
        return self._text

    def _add(self, pieces: list[str]) -> None:
        for piece in pieces:
            self._pieces.put_nowait(piece)

    async def _speak_all(self) -> None:
        encoder = Encoder(self.config.response_format)
        try:
            while (piece := await self._pieces.get()) is not None:
                await self._speak(piece, encoder)
            tail = await run_in_thread(encoder.finish)
            if tail:
                self._events.put_nowait(AudioChunk(tail))
            self.done = True
            self._events.put_nowait(SpeechDone(self.characters))
        except VoxError as exc:
            self.failure = exc
            self._events.put_nowait(SpeechFailed(exc))
        self._events.put_nowait(None)

    async def _speak(self, piece: str, encoder: Encoder) -> None:
        prepared = await self._prepare(piece, self.config)
        await self._usage.reserve(self.owner_id, prepared.characters)  # before its first audio
        self.reserved += prepared.characters
        owed = prepared.characters
        try:
            async for chunk in self._speech.unmetered_pcm(prepared):
                data = await run_in_thread(encoder.encode, chunk, prepared.sample_rate)
                if data:
                    self._events.put_nowait(AudioChunk(data, owed))
                    owed = 0
        except VoxError:
            self._forgiven = prepared.characters - owed  # our failure costs nothing
            raise
        self.characters += prepared.characters
        self.engine = prepared.engine.name

    async def _prepare(self, text: str, config: SpeechSessionConfig) -> PreparedSpeech:
        voice = config.voice
        if voice is None and config.ref_audio is None:
            voice = self._speech.default_voice(self._model)
        request = SpeechRequest(
            self.owner_id, text, self._model, voice_id=voice, ref_audio=config.ref_audio
        )
        return await self._speech.prepare(request, reuse=self._voice_state)


class Encoder:
    """One output stream for the whole session (pieces join into one file); ``pcm`` is
    resampled to 24 kHz, other formats keep the engine's rate. Blocking: run off the loop."""

    def __init__(self, fmt: AudioFormat) -> None:
        self._fmt = fmt
        self._encoder = None if fmt != "pcm" else make_stream_encoder(fmt, PCM_RATE)
        self._resampler: StreamResampler | None = None

    def encode(self, chunk: Samples, rate: int) -> bytes:
        if self._encoder is None:
            self._encoder = make_stream_encoder(self._fmt, rate)
        if self._fmt == "pcm" and rate != PCM_RATE:
            if self._resampler is None:
                self._resampler = StreamResampler(rate, PCM_RATE)
            chunk = self._resampler.process(chunk)
        return self._encoder.encode(chunk)

    def finish(self) -> bytes:
        if self._encoder is None:
            return b""
        tail = self._encoder.encode(self._resampler.flush()) if self._resampler else b""
        return tail + self._encoder.finish()


class RealtimeSpeechService:
    """Realtime speech sessions for Mistral's WebSocket shape."""

    def __init__(self, speech: SpeechService, usage: UsageService, gate: SessionGate) -> None:
        """Args:
        speech: speaks each piece (voice resolution, the engine scheduler).
        usage: credits per piece, one record per session.
        gate: the session limits, shared with realtime transcription.
        """
        self._speech = speech
        self._usage = usage
        self.gate = gate

    def check_model(self, model: str | None) -> None:
        """Refuse a model no engine serves (before the socket is accepted).

        Raises:
            InvalidRequest: unknown model. ServiceUnavailable: not installed.
        """
        try:
            self._speech.default_voice(model)
        except InvalidRequest as exc:
            if exc.field == "model":
                raise  # an engine without presets is fine: the session may name a voice

    @contextlib.asynccontextmanager
    async def session(self, owner_id: str, model: str | None) -> AsyncIterator[SpeechSession]:
        """A session; when the block ends, what was not delivered is refunded and one usage
        record is left: characters and credits delivered, the status of a failure (402 for a
        balance that ran out) or 499 for a client that left before the end."""
        session = SpeechSession(self._speech, self._usage, owner_id, model)
        try:
            async with self._usage.metered(owner_id, SPEECH_ENDPOINT) as meter:
                try:
                    yield session
                finally:
                    await session.close()
                    self._settle(meter, session)
                _raise_outcome(session)
        except VoxError as exc:
            if exc is not session.failure and not isinstance(exc, ClientGone):
                raise

    @staticmethod
    def _settle(meter: Metering, session: SpeechSession) -> None:
        """What the session's record says; ``metered`` writes it and the refund of what was
        reserved but not delivered in one transaction (as for a speech request)."""
        charged = session.charged
        meter.engine = session.engine
        meter.characters = charged
        meter.work_credits = charged
        meter.work_refund = session.reserved - charged


def _raise_outcome(session: SpeechSession) -> None:
    """Gives the usage record the status of how the session ended."""
    if session.failure is not None:
        raise session.failure
    if not session.done and session.reserved:
        raise ClientGone("The client closed the session before the end.")
