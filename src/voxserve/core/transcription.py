"""Speech to text: resolve the audio source and the engine, then transcribe with lazy segments.

``prepare`` fetches the audio, decodes its first window and checks the options before anything
is sent, so the API answers real statuses; ``stream`` yields the language, then segments as they
are decoded. ``task="translate"`` gives English text whatever the language spoken (engines with
``translation``).

Long audio is decoded once, window by window: ``prepare`` starts the decoder and keeps it,
positioned after the first window. The duration is known before any decoding, from the
container's metadata or, for files that declare none, from its packets (demuxing, counted only
up to the limit), so audio over ``limits.max_audio_seconds`` is refused (413) before a sample of
it is decoded. Decoding runs on the decode pool (429 when it is full).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from voxserve.audio.decode import Source, decode_head, iter_decode, measure_duration
from voxserve.audio.pool import DecodePool
from voxserve.audio.types import AudioClip, Samples
from voxserve.core.audio_sources import AudioSources, OpenedSource
from voxserve.core.diarization import (
    MISTRAL_LIMITS,
    Anonymous,
    DiarizationPlan,
    DiarizationService,
    ReferenceLimits,
    local_diarizer,
    windows_of,
)
from voxserve.core.engine_choice import EngineChoice
from voxserve.core.fetching import Fetched, UrlFetcher
from voxserve.core.files import FileService
from voxserve.core.usage import UsageService
from voxserve.engines.handles import STTHandle
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import Segment, TranscriptionInfo, TranscriptionOptions
from voxserve.errors import InvalidRequest, PayloadTooLarge, Unsupported, ValidationFailed
from voxserve.metrics import Metrics
from voxserve.settings import LimitSettings

log = logging.getLogger(__name__)
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
Task = Literal["transcribe", "translate"]
TRANSLATION_HINT = (
    "Translation needs an engine that can translate: a multilingual Whisper model "
    "(voxserve models pull faster-whisper-base) or a remote server (VOXSERVE_REMOTE__STT_URL)."
)


@dataclass(frozen=True)
class AudioSource:
    """Exactly one of: uploaded bytes, a URL, or a stored file id."""

    data: Source | None = None
    """The audio: bytes, or an upload spooled to disk (an open file, decoded from there)."""
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
    task: Task = "transcribe"
    """``translate``: English text whatever the language spoken (OpenAI's translations)."""
    speaker_references: Mapping[str, bytes] = field(default_factory=dict)
    """Name -> encoded clip of a speaker known to be in the audio (needs ``diarize``)."""
    reference_limits: ReferenceLimits = MISTRAL_LIMITS
    """The shape's limits on ``speaker_references``."""
    anonymous_speakers: Anonymous = "numbered"
    """How unnamed speakers are called: ``speaker_1`` (Mistral) or ``A`` (OpenAI)."""


@dataclass(frozen=True)
class PreparedTranscription:
    owner_id: str
    engine: STTHandle
    """The engine that transcribes (a snapshot; ``engine.name`` is the model to report)."""
    audio: AudioClip
    """The whole audio, or its first window when it is longer than one."""
    options: TranscriptionOptions
    duration: float
    """The whole audio's duration in seconds."""
    rest: AsyncGenerator[Samples, None] | None = None
    """The decoder, positioned after the first window, when the audio may span several (each
    later window is decoded as the transcription reaches it)."""
    diarization: DiarizationPlan | None = None
    """Set when voxserve's diarizer labels the speakers (the engine cannot)."""
    source: OpenedSource | None = None
    """The audio's source; a spool opened for it (a fetched URL, a stored file) is closed when
    the transcription ends: the segments run out, fail, or their consumer stops (``close``)."""

    def close(self) -> None:
        """Release the source's spool (idempotent); ``stream`` does it when the segments end."""
        if self.source is not None:
            self.source.close()


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    duration: float
    segments: tuple[Segment, ...]


class TranscriptionService:
    """Speech to text (and translation to English) for every API shape and for chat's audio
    parts: source resolution, engine choice, windowed decoding, metering."""

    def __init__(
        self,
        engines: EngineManager,
        choice: EngineChoice,
        files: FileService,
        fetcher: UrlFetcher,
        usage: UsageService,
        limits: LimitSettings,
        decoding: DecodePool,
        diarization: DiarizationService | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._diarization = diarization
        self._metrics = metrics or Metrics()
        self._engines = engines
        self._decoding = decoding
        self._choice = choice
        self._sources = AudioSources(files, fetcher)
        self._usage = usage
        self._limits = limits

    def pick_engine(self, model: str | None, *, task: Task = "transcribe") -> STTHandle:
        """The engine for ``model`` (see ``engine_choice``); for a translation with no model
        named, the best engine that can translate.

        Raises:
            InvalidRequest: an unknown model. ServiceUnavailable: not installed (with the hint).
        """
        return self._choice.transcription(model, translation=task == "translate")

    def can_diarize(self, engine: STTHandle) -> bool:
        """Whether ``engine``'s transcriptions can carry speakers: it diarizes itself, or
        voxserve's diarizer joins its word timestamps."""
        caps = engine.capabilities
        local = self._diarization is not None and self._diarization.available
        return caps.diarization or (local and caps.word_timestamps)

    async def prepare(self, request: TranscriptionRequest) -> PreparedTranscription:
        """Check options, fetch the audio and decode its first window.

        Raises:
            InvalidRequest: no source or several, a refused URL, undecodable or empty audio,
                an unknown model.
            PayloadTooLarge: audio over ``limits.max_audio_seconds`` (nothing decoded).
            Overloaded: the decode pool is full.
            Unsupported: diarization or translation asked of an engine that cannot.
            ServiceUnavailable: a known model whose engine is not installed.
            NotFound: an unknown file id.
        """
        engine = self.pick_engine(request.model, task=request.task)
        _check_abilities(engine, request)
        local = local_diarizer(
            self._diarization,
            engine,
            diarize=request.diarize,
            references=bool(request.speaker_references),
            field=request.reference_limits.field,
        )
        options = TranscriptionOptions(
            language=normalise_language(request.language),
            temperature=request.temperature,
            word_timestamps=request.word_timestamps or local is not None,
            hotwords=request.hotwords,
            prompt=request.prompt,
            task=request.task,
            diarize=request.diarize and local is None,
        )
        references: dict[str, AudioClip] = {}  # checked now, embedded once the audio passed
        if local is not None and request.speaker_references:
            references = await local.reference_clips(
                request.speaker_references, request.reference_limits
            )
        source = await self.load_source(request.owner_id, request.source)
        try:
            prepared = await self._prepare_audio(
                request, engine, options, local, references, source
            )
        except BaseException:
            source.close()
            raise
        return replace(prepared, source=source)

    async def _prepare_audio(
        self,
        request: TranscriptionRequest,
        engine: STTHandle,
        options: TranscriptionOptions,
        local: DiarizationService | None,
        references: dict[str, AudioClip],
        source: OpenedSource,
    ) -> PreparedTranscription:
        data, plan = source.data, None
        window = self._limits.transcription_window_seconds
        if local is not None:
            # Decoded once, whole (413 first); the transcriber's windows are cut from it.
            _check_not_empty(data)
            limit = self._limits.max_audio_seconds
            with _bad_audio():
                seconds = await self._decoding.run(_measure, data, limit)
            self._check_length(seconds)
            whole = await local.decode(data, field="file", seconds=seconds, limit=limit)
            self._check_length(whole.duration)  # the container may have declared less
            voices = await local.voices(references, request.reference_limits)
            words, anonymous = request.word_timestamps, request.anonymous_speakers
            plan = DiarizationPlan(whole, voices, words, anonymous)
            rate = engine.capabilities.sample_rate
            audio, duration, rest = await windows_of(whole, rate, window)
        else:
            audio, duration, rest = await self._open_windows(
                data, engine.capabilities.sample_rate, window
            )
        return PreparedTranscription(request.owner_id, engine, audio, options, duration, rest, plan)

    async def load_source(self, owner_id: str, source: AudioSource) -> OpenedSource:
        """The audio to decode from: uploaded data as it is; a URL or a stored file spooled to
        a temporary file (#14 item 8), which the caller closes (``OpenedSource.close``).

        Raises:
            InvalidRequest: none or several sources, a refused URL. NotFound: an unknown file.
        """
        return await self._sources.open(
            owner_id, data=source.data, url=source.url, file_id=source.file_id
        )

    async def open_url(self, url: str, *, field: str) -> Fetched:
        """The file at ``url`` spooled to a temporary file, which the caller closes: this
        server's signed file URLs are read from storage, others are fetched safely (a voice
        sample's ``voice_url``, chat audio).

        Raises:
            InvalidRequest: a refused URL (naming ``field``). NotFound: a bad signed URL.
        """
        return await self._sources.open_url(url, field=field)

    async def stream(
        self, prepared: PreparedTranscription, endpoint: str | None = "transcription"
    ) -> tuple[TranscriptionInfo, AsyncIterator[Segment]]:
        """Start: the info now, the segments as they are decoded (usage recorded at the end
        under ``endpoint``; None when the caller meters the request itself, as chat does).

        Long audio is transcribed window by window (``limits.transcription_window_seconds``), so
        memory stays bounded by one window whatever the length; later windows keep the language
        detected in the first.
        """
        started = time.perf_counter()
        try:
            info, first = await self._engines.transcribe(
                prepared.engine.name, prepared.audio, prepared.options
            )
        except BaseException:
            if prepared.rest is not None:
                await prepared.rest.aclose()
            prepared.close()
            raise
        info = replace(info, duration=prepared.duration)
        segments: AsyncIterator[Segment] = first
        if prepared.rest is not None:
            segments = self._windows(prepared, prepared.rest, info, segments)
        if prepared.diarization is not None and self._diarization is not None:
            segments = self._diarization.labelled(prepared.diarization, segments)
        if endpoint is None:
            return info, _closing(segments, prepared)
        metered = self._metered(prepared, info, segments, endpoint, started)
        return info, _closing(metered, prepared)

    async def _windows(
        self,
        prepared: PreparedTranscription,
        rest: AsyncGenerator[Samples, None],
        info: TranscriptionInfo,
        first: AsyncIterator[Segment],
    ) -> AsyncIterator[Segment]:
        rate = prepared.audio.sample_rate
        options = replace(prepared.options, language=prepared.options.language or info.language)
        offset = prepared.audio.duration
        async with aclosing(rest):
            async for segment in first:
                yield segment
            async for chunk in rest:
                # The container may have declared less than it holds: the limit still holds.
                self._check_length(offset + len(chunk) / rate)
                _, later = await self._engines.transcribe(
                    prepared.engine.name, AudioClip(chunk, rate), options, admitted=True
                )
                async with aclosing(later):
                    async for segment in later:
                        yield shifted(segment, offset)
                offset += len(chunk) / rate

    async def decode_whole(self, data: Source, sample_rate: int) -> AudioClip:
        """The whole audio at ``sample_rate`` (for engines that hear it, as chat's audio-native
        ones), measured first: over ``limits.max_audio_seconds`` nothing is decoded.

        Raises:
            InvalidRequest: empty or undecodable audio. PayloadTooLarge: over the limit.
            Overloaded: the decode pool is full.
        """
        _check_not_empty(data)
        with _bad_audio():
            self._check_length(
                await self._decoding.run(_measure, data, self._limits.max_audio_seconds)
            )
            clip: AudioClip = await self._decoding.run(
                _decode_at, data, sample_rate, self._limits.max_audio_seconds
            )
        self._check_length(clip.duration)  # the container may have declared less
        return clip

    async def _open_windows(
        self, data: Source, sample_rate: int, window_seconds: float
    ) -> tuple[AudioClip, float, AsyncGenerator[Samples, None] | None]:
        """Measure (413 over the limit), then decode the first window; return it, the whole
        duration, and the decoder positioned after it (None when the first window holds
        everything). Bad audio is a 400 here (the request, not a field, is wrong)."""
        _check_not_empty(data)
        limit = self._limits.max_audio_seconds
        with _bad_audio():
            duration = await self._decoding.run(_measure, data, limit)
        self._check_length(duration)
        windows = self._decoding.iterate(
            lambda: iter_decode(data, sample_rate=sample_rate, chunk_seconds=window_seconds)
        )
        try:
            with _bad_audio():
                first = await anext(windows, None)
                if first is None:
                    raise ValidationFailed("Audio is empty: the file contains no audio samples.")
        except BaseException:
            await windows.aclose()
            raise
        clip = AudioClip(first, sample_rate)
        if len(first) < round(window_seconds * sample_rate):
            await windows.aclose()
            return clip, clip.duration, None
        return clip, max(duration, clip.duration), windows

    def _check_length(self, seconds: float) -> None:
        limit = self._limits.max_audio_seconds
        if seconds > limit:
            raise PayloadTooLarge(
                f"The audio is at least {seconds:.0f} s long; the limit is {limit:.0f} s "
                "(VOXSERVE_LIMITS__MAX_AUDIO_SECONDS)."
            )

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
        started: float,
    ) -> AsyncIterator[Segment]:
        progress = Progress(info.duration)
        async with self._usage.metered(prepared.owner_id, endpoint) as meter:
            meter.engine = prepared.engine.name
            async for segment in segments:
                progress.update(segment.end)
                yield segment
            meter.audio_seconds = prepared.duration
        elapsed = time.perf_counter() - started
        self._metrics.real_time_factor("stt", prepared.engine.name, elapsed, prepared.duration)


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


def _check_abilities(engine: STTHandle, request: TranscriptionRequest) -> None:
    caps = engine.capabilities
    if request.task == "translate" and not caps.translation:
        raise Unsupported(f"The '{engine.name}' engine cannot translate. {TRANSLATION_HINT}")


def _decode_at(data: Source, sample_rate: int, limit: float) -> AudioClip:
    # Stops a second past the limit: a container that declared less is still caught (413).
    return decode_head(data, sample_rate=sample_rate, max_seconds=limit + 1)[0]


async def _closing(
    segments: AsyncIterator[Segment], prepared: PreparedTranscription
) -> AsyncIterator[Segment]:
    """``segments``, then ``prepared``'s source closed, also when they fail or are dropped."""
    try:
        async for segment in segments:
            yield segment
    finally:
        aclose = getattr(segments, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            prepared.close()


def _measure(data: Source, limit: float) -> float:
    return measure_duration(data, limit=limit)


def _check_not_empty(data: Source) -> None:
    if isinstance(data, bytes | bytearray | memoryview):
        empty = not data
    elif isinstance(data, Path):
        empty = data.stat().st_size == 0
    else:
        empty = data.seek(0, os.SEEK_END) == 0
    if empty:
        raise InvalidRequest("The audio file is empty.", field="file")


@contextmanager
def _bad_audio() -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        raise InvalidRequest(exc.message, field="file") from None


def shifted(segment: Segment, offset: float) -> Segment:
    """A segment (and its words) moved ``offset`` seconds later."""
    words = None
    if segment.words is not None:
        words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in segment.words)
    return replace(segment, start=segment.start + offset, end=segment.end + offset, words=words)
