"""Speech to text: resolve the audio source and the engine, then transcribe with lazy segments.

``prepare`` fetches and decodes the audio and checks the options before anything is sent, so the
API answers real statuses; ``stream`` yields the language, then segments as they are decoded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace

from voxserve.audio.decode import decode_head, iter_decode
from voxserve.audio.types import AudioClip
from voxserve.core.aliases import HOSTED_STT_MODELS
from voxserve.core.fetching import UrlFetcher
from voxserve.core.files import FileService
from voxserve.core.usage import UsageService
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import Segment, STTEngine, TranscriptionInfo, TranscriptionOptions
from voxserve.engines.threads import iterate_in_thread
from voxserve.errors import InvalidRequest, ServiceUnavailable, Unsupported, ValidationFailed
from voxserve.settings import Settings

log = logging.getLogger(__name__)
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class AudioSource:
    """Exactly one of: uploaded bytes, a URL, or a stored file id."""

    data: bytes | None = None
    url: str | None = None
    file_id: str | None = None


@dataclass(frozen=True)
class TranscriptionRequest:
    owner_id: str
    source: AudioSource
    model: str | None = None
    language: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    hotwords: tuple[str, ...] = ()
    prompt: str | None = None
    diarize: bool = False


@dataclass(frozen=True)
class PreparedTranscription:
    owner_id: str
    engine: STTEngine
    audio: AudioClip
    """The whole audio, or its first window when it is longer than one."""
    options: TranscriptionOptions
    duration: float
    """The whole audio's duration in seconds."""
    encoded: bytes | None = None
    """The encoded file, kept when the audio spans several windows (decoded one at a time)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    duration: float
    segments: tuple[Segment, ...]


class TranscriptionService:
    def __init__(
        self,
        engines: EngineManager,
        files: FileService,
        fetcher: UrlFetcher,
        usage: UsageService,
        settings: Settings,
    ) -> None:
        self._engines = engines
        self._files = files
        self._fetcher = fetcher
        self._usage = usage
        self._settings = settings

    def pick_engine(self, model: str | None) -> STTEngine:
        """Hosted model names and None use the default engine; an engine name picks one."""
        engines = self._engines.stt_engines()
        if not engines:
            raise ServiceUnavailable("No transcription engine is installed.")
        name = (
            model
            if model and model not in HOSTED_STT_MODELS
            else self._settings.engines.default_stt
        )
        if not name:
            return engines[0]
        engine = next((e for e in engines if e.name == name), None)
        if engine is None:
            names = ", ".join(e.name for e in engines)
            raise InvalidRequest(
                f"Model '{name}' not found. Available transcription models: {names}.", field="model"
            )
        return engine

    async def prepare(self, request: TranscriptionRequest) -> PreparedTranscription:
        """Check options, fetch and decode the audio.

        Raises:
            InvalidRequest: no source or several, a refused URL, undecodable or empty audio,
                an unknown model, diarization asked.
            NotFound: an unknown file id.
        """
        engine = self.pick_engine(request.model)
        caps = engine.capabilities()
        if request.diarize and not caps.diarization:
            raise Unsupported(
                "Diarization is not available: no installed transcription engine can tell "
                "speakers apart. Configure a remote engine that can (VOXSERVE_REMOTE__STT_URL).",
                field="diarize",
            )
        language = normalise_language(request.language)
        data = await self.load_source(request.owner_id, request.source)
        window = self._settings.limits.transcription_window_seconds
        audio, duration = await decode_window(data, caps.sample_rate, window)
        if duration > self._settings.limits.max_audio_seconds:
            raise InvalidRequest(
                f"The audio is {duration:.0f} s long; the limit is "
                f"{self._settings.limits.max_audio_seconds:.0f} s.",
                field="file",
            )
        options = TranscriptionOptions(
            language=language,
            temperature=request.temperature,
            word_timestamps=request.word_timestamps,
            hotwords=request.hotwords,
            prompt=request.prompt,
        )
        encoded = data if duration > audio.duration else None
        return PreparedTranscription(request.owner_id, engine, audio, options, duration, encoded)

    async def load_source(self, owner_id: str, source: AudioSource) -> bytes:
        given = [x is not None for x in (source.data, source.url, source.file_id)]
        if sum(given) != 1:
            raise InvalidRequest(
                "Give exactly one of file, file_url or file_id.",
                field="file" if sum(given) == 0 else None,
            )
        if source.data is not None:
            return source.data
        if source.file_id is not None:
            return (await self._files.content(owner_id, source.file_id))[1]
        return await self.fetch_url(source.url or "", field="file_url")

    async def fetch_url(self, url: str, *, field: str) -> bytes:
        """This server's signed file URLs are read locally; other URLs are fetched safely."""
        local = await self._files.resolve_signed_url(url)
        if local is not None:
            return local[1]
        return (await self._fetcher.fetch(url, field=field)).data

    async def stream(
        self, prepared: PreparedTranscription, endpoint: str | None = "transcription"
    ) -> tuple[TranscriptionInfo, AsyncIterator[Segment]]:
        """Start: the info now, the segments as they are decoded (usage recorded at the end
        under ``endpoint``; None when the caller meters the request itself, as chat does).

        Long audio is transcribed window by window (``limits.transcription_window_seconds``), so
        memory stays bounded by one window whatever the length; later windows keep the language
        detected in the first.
        """
        info, first = await self._engines.transcribe(
            prepared.engine.name, prepared.audio, prepared.options
        )
        info = replace(info, duration=prepared.duration)
        segments: AsyncIterator[Segment] = first
        if prepared.encoded is not None:
            segments = self._windows(prepared, info, segments)
        if endpoint is None:
            return info, segments
        return info, self._metered(prepared, info, segments, endpoint)

    async def _windows(
        self,
        prepared: PreparedTranscription,
        info: TranscriptionInfo,
        first: AsyncIterator[Segment],
    ) -> AsyncIterator[Segment]:
        async for segment in first:
            yield segment
        rate = prepared.audio.sample_rate
        options = replace(prepared.options, language=prepared.options.language or info.language)
        window = self._settings.limits.transcription_window_seconds
        chunks = iterate_in_thread(
            lambda: iter_decode(prepared.encoded or b"", sample_rate=rate, chunk_seconds=window)
        )
        offset = 0.0
        async with aclosing(chunks):
            async for chunk in chunks:
                if offset > 0:
                    clip = AudioClip(chunk, rate)
                    _, later = await self._engines.transcribe(
                        prepared.engine.name, clip, options, admitted=True
                    )
                    async with aclosing(later):
                        async for segment in later:
                            yield shifted(segment, offset)
                offset += len(chunk) / rate

    async def transcribe(self, prepared: PreparedTranscription) -> Transcript:
        info, segments = await self.stream(prepared)
        collected = tuple([s async for s in segments])
        return Transcript(join_text(collected), info.language, info.duration, collected)

    async def _metered(
        self,
        prepared: PreparedTranscription,
        info: TranscriptionInfo,
        segments: AsyncIterator[Segment],
        endpoint: str,
    ) -> AsyncIterator[Segment]:
        progress = Progress(info.duration)
        async with self._usage.metered(prepared.owner_id, endpoint) as meter:
            meter.engine = prepared.engine.name
            async for segment in segments:
                progress.update(segment.end)
                yield segment
            meter.audio_seconds = prepared.duration


class Progress:
    """Logs how far a long transcription has got, at most every 10% or 30 s."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.started = time.monotonic()
        self.logged_at = self.started
        self.logged_fraction = 0.0

    def update(self, position: float) -> None:
        if self.duration < 60:
            return
        fraction = min(position / self.duration, 1.0)
        now = time.monotonic()
        if fraction - self.logged_fraction >= 0.1 or now - self.logged_at >= 30:
            log.info(
                "transcription %.0f%% (%.0f of %.0f s audio, %.0f s elapsed)",
                fraction * 100,
                position,
                self.duration,
                now - self.started,
            )
            self.logged_fraction, self.logged_at = fraction, now


def join_text(segments: tuple[Segment, ...] | list[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def normalise_language(language: str | None) -> str | None:
    if not language:
        return None
    code = language.strip().lower().split("-")[0].split("_")[0]
    if not LANGUAGE_CODE.match(code):
        raise ValidationFailed(
            f"language: '{language}' is not an ISO-639-1 code.", field="language"
        )
    return code


async def decode_for_engine(data: bytes, sample_rate: int) -> AudioClip:
    """The whole audio, decoded in a worker thread (see ``decode_window``)."""
    clip, _ = await decode_window(data, sample_rate, math.inf)
    return clip


async def decode_window(
    data: bytes, sample_rate: int, window_seconds: float
) -> tuple[AudioClip, float]:
    """The first window of audio and the whole duration, decoded in a worker thread; bad audio is
    a 400 here (the request, not a field, is wrong)."""
    if not data:
        raise InvalidRequest("The audio file is empty.", field="file")
    try:
        return await asyncio.to_thread(
            decode_head, data, sample_rate=sample_rate, max_seconds=window_seconds
        )
    except ValidationFailed as exc:
        raise InvalidRequest(exc.message, field="file") from None


def shifted(segment: Segment, offset: float) -> Segment:
    """A segment (and its words) moved ``offset`` seconds later."""
    words = None
    if segment.words is not None:
        words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in segment.words)
    return replace(segment, start=segment.start + offset, end=segment.end + offset, words=words)
