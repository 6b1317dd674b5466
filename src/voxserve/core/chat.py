"""Chat with audio: resolve the chat engine, turn audio parts into something it understands, check
the conversation fits, then generate (metered).

An engine that hears audio itself (``ChatCapabilities.audio_input``) gets each part unchanged.
Any other engine gets a transcript instead: the default transcription engine transcribes each
part, and the part is replaced in the message text by a delimited block with times and the
detected language::

    <audio_transcript index=1 language="en" duration="11.0s">
    [0.0-3.2] And so my fellow Americans, ask not what your country can do for you,
    </audio_transcript>

Everything that can fail on the client's side (unknown model, audio that cannot be fetched or
decoded, a conversation too long for the context) fails in ``prepare``, before any answer is
sent, so the API can answer with a real status.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal

from voxserve.audio.decode import Source
from voxserve.audio.process import to_mono_wav
from voxserve.audio.types import AudioClip
from voxserve.core.audio_sources import OpenedSource
from voxserve.core.b64 import decode_base64, iter_base64
from voxserve.core.engine_choice import EngineChoice
from voxserve.core.fetching import SPOOL_IN_MEMORY, new_spool
from voxserve.core.transcription import (
    AudioSource,
    TranscriptionRequest,
    TranscriptionService,
)
from voxserve.core.usage import UsageService
from voxserve.engines.handles import ChatHandle
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import AudioPart, ChatDelta, ChatMessage, ChatRequest, Segment
from voxserve.errors import InvalidRequest, ValidationFailed
from voxserve.offload import run_in_thread
from voxserve.settings import LimitSettings

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant", "tool"]
NATIVE_SAMPLE_RATE = 16000
"""Rate audio is decoded at for engines that hear it (only its duration is used here)."""


@dataclass(frozen=True)
class AudioInput:
    """An audio content part as the client sent it."""

    value: str
    """Base64 bytes, a ``data:`` URL, an ``http(s)`` URL, or a signed file URL of this server."""
    format: str | None = None
    """The client's format hint (OpenAI's ``input_audio.format``)."""


Part = str | AudioInput
"""A content part: text, or audio."""


@dataclass(frozen=True)
class InputMessage:
    role: Role
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ChatCompletionRequest:
    owner_id: str
    messages: tuple[InputMessage, ...]
    model: str | None = None
    """A hosted name (``voxtral-small-latest``) or None: the default engine; else an engine or
    model name."""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedChat:
    owner_id: str
    engine: ChatHandle
    """The engine that answers (a snapshot; ``engine.name`` is the model to report)."""
    request: ChatRequest
    """What the engine gets: transcripts in place of audio, unless it hears audio itself."""
    prompt_tokens: int
    audio_seconds: float

    @property
    def prompt_audio_seconds(self) -> int:
        """Whole seconds of audio in the prompt, rounded up (the wire's integer)."""
        return math.ceil(self.audio_seconds)


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class _Audio:
    """Running state while a request's audio parts are resolved."""

    seconds: float = 0.0
    count: int = 0


class ChatService:
    """Chat completions over the chat engines, with audio understood natively or through
    transcripts."""

    def __init__(
        self,
        engines: EngineManager,
        choice: EngineChoice,
        transcription: TranscriptionService,
        usage: UsageService,
        limits: LimitSettings,
    ) -> None:
        self._engines = engines
        self._choice = choice
        self._transcription = transcription
        self._usage = usage
        self._limits = limits

    def pick_engine(self, model: str | None) -> ChatHandle:
        """The engine for ``model`` (see ``engine_choice``): hosted names and None use the
        default; an engine name, or a model name an engine serves, picks that engine.

        Raises:
            ServiceUnavailable: no chat engine, or a known one that is not installed (with the
                install hint).
            InvalidRequest: an unknown model.
        """
        return self._choice.chat(model)

    async def prepare(self, request: ChatCompletionRequest) -> PreparedChat:
        """Resolve the engine and the audio, and check the conversation fits the context.

        Raises:
            ServiceUnavailable: no chat engine (says how to configure one).
            InvalidRequest: unknown model; audio that cannot be fetched or decoded; a
                conversation (plus ``max_tokens``) longer than the model's context.
            ValidationFailed: ``max_tokens`` above ``limits.chat_max_tokens``.
        """
        engine = self.pick_engine(request.model)
        native = engine.capabilities.audio_input
        audio = _Audio()
        messages = [
            await self._message(request.owner_id, message, native, audio)
            for message in request.messages
        ]
        chat_request = ChatRequest(
            messages=tuple(messages),
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            stop=request.stop,
        )
        prompt_tokens = await self._engines.count_tokens(engine.name, chat_request)
        budget = self._answer_budget(engine, prompt_tokens, request.max_tokens)
        self._check_fits(engine, prompt_tokens, request.max_tokens)
        chat_request = replace(chat_request, max_tokens=budget)
        log.debug("chat prompt for %s: %r", engine.name, [(m.role, m.content) for m in messages])
        return PreparedChat(request.owner_id, engine, chat_request, prompt_tokens, audio.seconds)

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[ChatDelta]:
        """The answer piece by piece; the last delta has ``finish_reason`` and both token counts
        (the engine's, else the prompt count from ``prepare`` and the number of pieces).
        Usage is recorded when the stream ends."""
        async with self._usage.metered(prepared.owner_id, "chat") as meter:
            meter.engine = prepared.engine.name
            meter.audio_seconds = prepared.audio_seconds
            pieces = 0
            deltas = self._engines.chat_stream(prepared.engine.name, prepared.request)
            async with aclosing(deltas):
                async for delta in deltas:
                    if delta.finish_reason is None:
                        pieces += 1 if delta.text else 0
                        yield delta
                        continue
                    last = _with_counts(delta, prepared.prompt_tokens, pieces)
                    meter.tokens = (last.prompt_tokens or 0) + (last.completion_tokens or 0)
                    yield last
                    return
            # An engine that ends without a finish reason still gets a proper last delta.
            last = _with_counts(ChatDelta(finish_reason="stop"), prepared.prompt_tokens, pieces)
            meter.tokens = (last.prompt_tokens or 0) + (last.completion_tokens or 0)
            yield last

    async def complete(self, prepared: PreparedChat) -> ChatAnswer:
        """The whole answer at once."""
        texts: list[str] = []
        last = ChatDelta()
        async for delta in self.stream(prepared):
            texts.append(delta.text)
            last = delta
        return ChatAnswer(
            text="".join(texts),
            finish_reason=last.finish_reason or "stop",
            prompt_tokens=last.prompt_tokens or 0,
            completion_tokens=last.completion_tokens or 0,
        )

    # ------------------------------------------------------------------ audio

    async def _message(
        self, owner_id: str, message: InputMessage, native: bool, audio: _Audio
    ) -> ChatMessage:
        texts: list[str] = []
        parts: list[AudioPart] = []
        for part in message.parts:
            if isinstance(part, str):
                texts.append(part)
                continue
            audio.count += 1
            with _about_part(audio.count):
                if native:
                    data = await self._audio_bytes(part)
                    parts.append(await self._native_part(data, part.format))
                    audio.seconds += parts[-1].clip.duration
                    continue
                source = await self._audio_file(part)
                try:
                    texts.append(await self._transcript_block(owner_id, source.data, audio))
                finally:
                    source.close()
        return ChatMessage(role=message.role, content="\n".join(texts), audio=tuple(parts))

    async def _audio_bytes(self, part: AudioInput) -> bytes:
        """The part's encoded bytes whole: an engine that hears audio is sent them as they are
        (bounded by the fetcher's ``max_bytes`` or the request body's size)."""
        value = part.value.strip()
        if _is_url(value):
            fetched = await self._transcription.open_url(value, field="input_audio")
            try:
                return await run_in_thread(fetched.read)
            finally:
                fetched.close()
        with _unreadable_audio():
            return decode_base64(value, "input_audio")

    async def _audio_file(self, part: AudioInput) -> OpenedSource:
        """The part as a file to transcribe from, closed by the caller: a URL's body spooled
        as fetched; base64 over ``SPOOL_IN_MEMORY`` decoded in pieces to a spool off the loop
        (the text itself came in the JSON body, so it is in memory by nature; its decoded
        bytes need not be)."""
        value = part.value.strip()
        if _is_url(value):
            fetched = await self._transcription.open_url(value, field="input_audio")
            return OpenedSource(fetched.body, fetched.body)
        with _unreadable_audio():
            if len(value) <= SPOOL_IN_MEMORY:
                return OpenedSource(decode_base64(value, "input_audio"))
            spool = await run_in_thread(_spooled_base64, value)
        return OpenedSource(spool, spool)

    async def _native_part(self, data: bytes, hint: str | None) -> AudioPart:
        clip = await self._transcription.decode_whole(data, NATIVE_SAMPLE_RATE)
        self._check_duration(clip)
        fmt = sniff_format(data) or hint
        if fmt is None:
            # A container nobody named: send it as WAV, which every audio model reads.
            return AudioPart(clip=clip, encoded=to_mono_wav(clip), format="wav")
        return AudioPart(clip=clip, encoded=data, format=fmt)

    async def _transcript_block(self, owner_id: str, data: Source, audio: _Audio) -> str:
        service = self._transcription
        prepared = await service.prepare(
            TranscriptionRequest(owner_id=owner_id, source=AudioSource(data=data))
        )
        # Not metered on its own: the chat request's record carries these audio seconds.
        info, segments = await service.stream(prepared, endpoint=None)
        collected = [segment async for segment in segments]
        audio.seconds += prepared.duration
        return transcript_block(audio.count, info.language, prepared.duration, collected)

    # ------------------------------------------------------------------ limits

    def _check_duration(self, clip: AudioClip) -> None:
        limit = self._limits.max_audio_seconds
        if clip.duration > limit:
            raise InvalidRequest(
                f"The audio is {clip.duration:.0f} s long; the limit is {limit:.0f} s.",
                field="input_audio",
            )

    def _answer_budget(self, engine: ChatHandle, prompt_tokens: int, max_tokens: int | None) -> int:
        """The most tokens the answer may take: ``max_tokens`` when given, else what is left of
        the context, never more than ``limits.chat_max_tokens`` (so no request can hold an
        engine for long).

        Raises:
            ValidationFailed: ``max_tokens`` above ``limits.chat_max_tokens``.
        """
        ceiling = self._limits.chat_max_tokens
        if max_tokens is not None and max_tokens > ceiling:
            raise ValidationFailed(
                f"max_tokens: at most {ceiling} on this server (got {max_tokens}).",
                field="max_tokens",
            )
        left = engine.capabilities.context_length - prompt_tokens
        return min(max_tokens or left, left, ceiling)

    def _check_fits(self, engine: ChatHandle, prompt_tokens: int, max_tokens: int | None) -> None:
        context = engine.capabilities.context_length
        wanted = prompt_tokens + (max_tokens or 1)
        if wanted <= context:
            return
        asked = f" plus max_tokens {max_tokens}" if max_tokens else ""
        raise InvalidRequest(
            f"The conversation is {prompt_tokens} tokens{asked}; the context of model "
            f"'{engine.name}' is {context} tokens. Shorten the conversation"
            + (" or lower max_tokens." if max_tokens else "."),
            field="messages",
        )


def transcript_block(
    index: int, language: str | None, duration: float, segments: list[Segment]
) -> str:
    """One audio part as text a text-only model can reason about: delimited, numbered, with the
    detected language and each segment's start and end in seconds."""
    lines = [
        f"[{s.start:.1f}-{s.end:.1f}] {s.text.strip()}" for s in segments if s.text.strip()
    ] or ["(no speech recognised)"]
    head = f'<audio_transcript index={index} language="{language or "unknown"}" '
    head += f'duration="{duration:.1f}s">'
    return "\n".join([head, *lines, "</audio_transcript>"])


_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (4, b"ftyp", "m4a"),
)


def sniff_format(data: bytes) -> str | None:
    """The container of encoded audio from its first bytes (``wav``, ``mp3``...), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    for offset, magic, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if len(data) > 1 and data[0] == 0xFF:
        # MPEG frame sync: layer bits 01 are layer III (mp3); 00 with ADTS sync is AAC.
        layer = (data[1] >> 1) & 0b11
        if data[1] & 0xE0 == 0xE0 and layer == 0b01:
            return "mp3"
        if data[1] & 0xF6 == 0xF0:
            return "aac"
    return None


def _with_counts(delta: ChatDelta, prompt_tokens: int, pieces: int) -> ChatDelta:
    """Fill counts a remote server did not report: ours for the prompt, pieces for the answer
    (servers stream about one token per piece)."""
    return replace(
        delta,
        prompt_tokens=delta.prompt_tokens if delta.prompt_tokens is not None else prompt_tokens,
        completion_tokens=(
            delta.completion_tokens if delta.completion_tokens is not None else pieces
        ),
    )


@contextmanager
def _unreadable_audio() -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        # Audio that cannot be read is a bad request (400), like a file that is not audio.
        raise InvalidRequest(exc.message, field="input_audio") from None


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def _spooled_base64(value: str) -> BinaryIO:
    """``value`` decoded a piece at a time into a new spool, at its start (blocking)."""
    spool = new_spool()
    try:
        for piece in iter_base64(value, "input_audio"):
            spool.write(piece)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


@contextmanager
def _about_part(index: int) -> Iterator[None]:
    """Say which audio part a fetch or decoding failure is about (the transcription service
    names its own ``file`` field)."""
    try:
        yield
    except InvalidRequest as exc:
        if exc.field not in ("file", "file_url", "input_audio") or exc.status != 400:
            raise
        raise InvalidRequest(f"Audio part {index}: {exc.message}", field="input_audio") from None
