"""Speech generation: resolve the engine and voice, then synthesise sentence by sentence.

``prepare`` does every check (text, engine, voice, cloning, credits) before any audio is made, so
the API can answer a real status; ``encoded`` then streams audio piece by piece (``synthesize``
gives the whole file). Each sentence takes its own engine slot, so a long request cannot hold an
engine while others wait for their first sentence; while the engine is busy with other requests,
sentences are cut further, at clauses, so a newcomer waits for a clause rather than a sentence.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, replace

import numpy as np
from cachetools import LRUCache

from voxserve.audio.decode import decode
from voxserve.audio.encode import encode, make_stream_encoder
from voxserve.audio.resample import StreamResampler, resample
from voxserve.audio.types import AudioClip, AudioFormat, Samples
from voxserve.core.aliases import HOSTED_VOICES, resolve_alias
from voxserve.core.engine_choice import EngineChoice
from voxserve.core.generations import GenerationService
from voxserve.core.presets import Preset, preferred_voice
from voxserve.core.text import parse_tags, split_clauses, split_sentences, strip_tags
from voxserve.core.usage import Metering, UsageService
from voxserve.core.voice_samples import voice_state_key
from voxserve.core.voices import VoiceService
from voxserve.engines.handles import TTSHandle
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import SynthesisRequest
from voxserve.errors import InvalidRequest, Unsupported, ValidationFailed
from voxserve.metrics import Metrics
from voxserve.offload import run_in_thread
from voxserve.settings import EngineSettings, LimitSettings
from voxserve.storage.protocol import BlobStore, FileRecord, VoiceRecord

log = logging.getLogger(__name__)
STATE_CACHE_BYTES = 64 * 1024 * 1024
"""Memory for the voice states used most recently (a larger state is not kept)."""

RAW_FORMATS: frozenset[AudioFormat] = frozenset({"pcm", "pcm16", "wav"})
"""Formats whose encoding is a copy (see ``_off_loop``)."""

CLONING_HINT = (
    "Voice cloning (custom voices and ref_audio) needs an engine that can clone: install the "
    "pocket-tts extra (pip install 'voxserve[pocket-tts]') or configure a remote Voxtral server "
    "(VOXSERVE_REMOTE__TTS_URL)."
)


@dataclass(frozen=True)
class SpeechRequest:
    owner_id: str
    text: str
    model: str | None = None
    voice_id: str | None = None
    ref_audio: bytes | None = None
    speed: float = 1.0
    language: str | None = None
    emotion: str | None = None
    """For text that no ``[emotion=...]`` tag covers (what ``instructions`` asked for)."""


@dataclass(frozen=True)
class VoiceChoice:
    """A resolved voice: a preset of the engine, or a cloned voice state."""

    preset: str | None = None
    """Engine-local preset id."""
    emotion: str | None = None
    """Emotion implied by the voice id (Voxtral 2 presets like ``en_paul_happy``)."""
    custom: VoiceRecord | None = None
    reference: AudioClip | None = None
    state: bytes | None = None
    """A ``ref_audio`` voice state an earlier ``prepare`` of the session made (``reuse``)."""


@dataclass(frozen=True)
class PreparedSpeech:
    owner_id: str
    engine: TTSHandle
    """The engine that speaks (a snapshot; ``engine.name`` is the model to report)."""
    sample_rate: int
    pieces: tuple[SynthesisRequest, ...]
    characters: int
    """Characters of the input, tags excluded: the usage and credit count."""


class SpeechService:
    """Text to speech for every API shape: validation, engine and voice choice, cloning,
    sentence-by-sentence synthesis, encoding and metering."""

    def __init__(
        self,
        engines: EngineManager,
        choice: EngineChoice,
        voices: VoiceService,
        blobs: BlobStore,
        usage: UsageService,
        generations: GenerationService,
        limits: LimitSettings,
        engine_settings: EngineSettings,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._engines = engines
        self._choice = choice
        self._voices = voices
        self._blobs = blobs
        self._usage = usage
        self._generations = generations
        self._limits = limits
        self._engine_settings = engine_settings
        self._states: LRUCache[str, bytes] = LRUCache(STATE_CACHE_BYTES, getsizeof=len)
        """Voice states read or made here, by blob key: a key names one sample's state for
        one engine version (``voice_state_key``), so an entry is never stale on any replica."""

    async def prepare(
        self, request: SpeechRequest, *, reuse: ClonedVoice | None = None
    ) -> PreparedSpeech:
        """Validate and resolve everything; no audio is made yet.

        ``reuse``: for one more piece of a session that already cloned its ``ref_audio``, the
        state an earlier ``prepare`` made (``cloned_voice(prepared)``): the sample is neither
        decoded nor cloned again, unless the engine that would speak is no longer the one
        that made it.

        Raises:
            ValidationFailed: empty or too long text, speed out of range.
            InvalidRequest: no voice given, unknown model, voice of another engine.
            ServiceUnavailable: a known model whose engine is not installed (with its hint).
            VoiceNotFound: the voice id is unknown (or another owner's).
            Unsupported: cloning asked of an engine that cannot clone.
        """
        self._check_text(request)
        # Every character sent counts, tags excepted; the pieces lack the spaces between
        # sentences, so summing them would undercount.
        characters = len(strip_tags(request.text))
        preset = self._voices.presets.get(request.voice_id or "")
        engine = self._choice.speech(
            request.model,
            voice_engine=preset.engine if preset is not None else None,
            cloning=self._wants_clone(request),
        )
        state = _reusable_state(reuse, request, engine)
        if state is not None:
            choice = VoiceChoice(state=state)  # nothing to clone: the reservation checks credits
        else:
            await self._usage.check_balance(request.owner_id, characters)  # before any cloning
            choice = await self._choose_voice(request, engine, preset)
        cloned = choice.custom is not None or choice.reference is not None or state is not None
        if cloned and not engine.capabilities.cloning:
            raise Unsupported(f"The '{engine.name}' engine cannot clone voices. {CLONING_HINT}")
        pieces = await self._pieces(request, engine, choice)
        if not pieces:
            raise ValidationFailed("input: there is nothing to speak.", field="input")
        return PreparedSpeech(
            request.owner_id, engine, engine.capabilities.sample_rate, tuple(pieces), characters
        )

    def default_engine(self, *, cloning: bool = False) -> TTSHandle:
        """The engine hosted model names (and no model) use. Raises ServiceUnavailable."""
        handle: TTSHandle = self._choice.default("tts", needs="cloning" if cloning else None)
        return handle

    def default_voice(self, model: str | None = None, *, language: str = "en") -> str:
        """The public id of the voice to speak with when none is given: the best preset of the
        engine ``model`` chooses that speaks ``language`` (else its first preset).

        Raises:
            InvalidRequest: unknown model, or an engine without preset voices.
            ServiceUnavailable: as ``prepare``.
        """
        engine = self._choice.speech(model)
        preset = preferred_voice(self._voices.presets.for_engine(engine.name), language)
        if preset is None:
            raise InvalidRequest(
                f"The '{engine.name}' engine has no preset voice; give a voice.", field="voice_id"
            )
        return preset.id

    async def encoded(
        self,
        prepared: PreparedSpeech,
        fmt: AudioFormat,
        endpoint: str = "speech",
        *,
        sample_rate: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The stream encoded as ``fmt`` (at ``sample_rate``, default the engine's); the pieces
        concatenate into one valid file."""
        rate = sample_rate or prepared.sample_rate
        resampler = (
            StreamResampler(prepared.sample_rate, rate) if rate != prepared.sample_rate else None
        )
        encoder = make_stream_encoder(fmt, rate)

        def encode_chunk(chunk: Samples) -> bytes:
            return encoder.encode(resampler.process(chunk) if resampler else chunk)

        def encode_tail() -> bytes:
            tail = encoder.encode(resampler.flush()) if resampler else b""
            return tail + encoder.finish()

        async with self._metered(prepared, endpoint) as meter:
            delivery = _Delivery(prepared, meter)
            async for index, chunk in self._indexed_pcm(prepared):
                delivery.fed(index)
                data = await _off_loop(fmt, encode_chunk, chunk)
                if data:
                    yield data
                    delivery.sent()  # the consumer came back for more: this data went out
            tail = await _off_loop(fmt, encode_tail)
            if tail:
                yield tail

    async def synthesize(
        self,
        prepared: PreparedSpeech,
        fmt: AudioFormat,
        endpoint: str = "speech",
        *,
        sample_rate: int | None = None,
    ) -> bytes:
        """The whole file at once (with exact sizes in its header)."""
        async with self._metered(prepared, endpoint):
            return await self._whole(prepared, fmt, sample_rate or prepared.sample_rate)

    async def generate(
        self, prepared: PreparedSpeech, fmt: AudioFormat, endpoint: str = "speech"
    ) -> tuple[bytes, FileRecord]:
        """The whole file, also stored as a generation (served by URL for a while); charged only
        when both the audio and its storing succeed."""
        async with self._metered(prepared, endpoint):
            audio = await self._whole(prepared, fmt, prepared.sample_rate)
            return audio, await self._generations.save(prepared.owner_id, audio, fmt)

    async def _whole(self, prepared: PreparedSpeech, fmt: AudioFormat, rate: int) -> bytes:
        chunks = [chunk async for chunk in self._pcm(prepared)]
        samples = np.concatenate(chunks).astype(np.float32)
        if rate != prepared.sample_rate:
            samples = await run_in_thread(resample, samples, prepared.sample_rate, rate)
        return await run_in_thread(encode, samples, rate, fmt)

    @asynccontextmanager
    async def _metered(self, prepared: PreparedSpeech, endpoint: str) -> AsyncIterator[Metering]:
        """Credits are taken before the first chunk and refunded if anything up to the last
        encoded byte fails (a client that hangs up keeps paying for the pieces it received);
        usage is recorded at the end."""
        async with self._usage.metered(
            prepared.owner_id, endpoint, credits=prepared.characters
        ) as meter:
            meter.engine = prepared.engine.name
            yield meter
            meter.characters = prepared.characters

    async def _pcm(self, prepared: PreparedSpeech) -> AsyncIterator[Samples]:
        async for _, chunk in self._indexed_pcm(prepared):
            yield chunk

    async def _indexed_pcm(self, prepared: PreparedSpeech) -> AsyncIterator[tuple[int, Samples]]:
        """The audio, each chunk with the index of the piece (sentence) it speaks."""
        admitted = False
        timer = self._metrics.speech_timer(prepared.engine.name, prepared.sample_rate)
        for index, sentence in enumerate(prepared.pieces):
            for piece in self._scheduled(prepared.engine.name, sentence):
                chunks = self._engines.stream_tts(prepared.engine.name, piece, admitted=admitted)
                admitted = True
                async with aclosing(chunks):
                    async for chunk in chunks:
                        if len(chunk):
                            timer.chunk(len(chunk))
                            yield index, chunk
        timer.done()

    def _scheduled(self, engine: str, sentence: SynthesisRequest) -> list[SynthesisRequest]:
        """The sentence whole when the engine is free; cut at clauses when others use it."""
        if not self._engines.tts_busy(engine):
            return [sentence]
        return [replace(sentence, text=text) for text in split_clauses(sentence.text)]

    # ------------------------------------------------------------------ resolution

    def _check_text(self, request: SpeechRequest) -> None:
        limit = self._limits.speech_max_characters
        if not strip_tags(request.text).strip():
            raise ValidationFailed("input: the text is empty.", field="input")
        if len(request.text) > limit:
            raise ValidationFailed(
                f"input: the text is {len(request.text)} characters; the limit is {limit}.",
                field="input",
            )
        if not 0.25 <= request.speed <= 4.0:
            raise ValidationFailed("speed: must be between 0.25 and 4.0.", field="speed")

    def _wants_clone(self, request: SpeechRequest) -> bool:
        """ref_audio, or a voice id that is no preset and no hosted alias (a custom voice)."""
        if request.ref_audio is not None:
            return True
        voice_id = request.voice_id or ""
        known = voice_id in HOSTED_VOICES or voice_id in self._engine_settings.voice_aliases
        return bool(voice_id) and not known

    async def _choose_voice(
        self, request: SpeechRequest, engine: TTSHandle, preset: Preset | None
    ) -> VoiceChoice:
        """``preset`` is the preset that ``request.voice_id`` names, if any."""
        if request.ref_audio is not None:
            if request.voice_id:
                raise InvalidRequest(
                    "Give either voice_id or ref_audio, not both.", field="ref_audio"
                )
            clip = await self._voices.reference_clip(request.ref_audio)
            return VoiceChoice(reference=clip)
        voice_id = request.voice_id
        if not voice_id:
            raise InvalidRequest("Either ref_audio or voice must be provided.", field="voice_id")
        if preset is not None:
            if preset.engine != engine.name:
                raise InvalidRequest(
                    f"Voice '{voice_id}' belongs to the '{preset.engine}' engine, not "
                    f"'{engine.name}'.",
                    field="voice_id",
                )
            return VoiceChoice(preset=preset.voice.id)
        alias = resolve_alias(
            voice_id,
            self._voices.presets,
            engine=engine.name,
            pinned=self._engine_settings.voice_aliases,
        )
        if alias is not None and alias.preset.engine == engine.name:
            return VoiceChoice(preset=alias.preset.voice.id, emotion=alias.emotion)
        return VoiceChoice(custom=await self._voices.get_record(request.owner_id, voice_id))

    async def _pieces(
        self, request: SpeechRequest, engine: TTSHandle, choice: VoiceChoice
    ) -> list[SynthesisRequest]:
        pieces = []
        # Keyed by the sample a custom voice speaks with: emotions without a sample of their own
        # share the main sample's state.
        states: dict[str | None, bytes | None] = {}
        for run in parse_tags(request.text):
            emotion = run.emotion or request.emotion or choice.emotion
            custom = choice.custom
            sample = custom.sample_for(emotion).emotion if custom is not None else None
            if sample not in states:
                states[sample] = await self._voice_state(engine, choice, emotion)
            state = states[sample]
            speed = min(max(request.speed * (run.pace or 1.0), 0.25), 4.0)
            for sentence in split_sentences(run.text):
                pieces.append(
                    SynthesisRequest(
                        text=sentence,
                        voice=choice.preset,
                        voice_state=state,
                        speed=speed,
                        language=request.language,
                        emotion=emotion,
                    )
                )
        return pieces

    async def _voice_state(
        self, engine: TTSHandle, choice: VoiceChoice, emotion: str | None
    ) -> bytes | None:
        if choice.state is not None:
            return choice.state
        if choice.reference is not None:
            return await self._engines.clone_voice(engine.name, choice.reference)
        if choice.custom is None:
            return None
        return await self.custom_voice_state(choice.custom, engine, emotion)

    async def custom_voice_state(
        self, record: VoiceRecord, engine: TTSHandle, emotion: str | None
    ) -> bytes:
        """The voice state of a saved voice: made once per (sample, engine version), kept in
        the blob store, and the most recently used ones in memory too (no blob read, which on
        S3 is a round trip before the first audio)."""
        sample = record.sample_for(emotion)
        key = voice_state_key(sample.blob_key, engine.name, engine.version)
        state = self._states.get(key)
        if state is not None:
            return state
        try:
            state = await self._blobs.get(key)
        except KeyError:
            wav = await self._blobs.get(sample.blob_key)
            clip = await run_in_thread(decode, wav)
            state = await self._engines.clone_voice(engine.name, clip)
            await self._blobs.put(key, state)
            log.info("voice state made for %s on %s %s", record.id, engine.name, engine.version)
        if len(state) <= STATE_CACHE_BYTES:
            self._states[key] = state
        return state

    def unmetered_pcm(self, prepared: PreparedSpeech) -> AsyncIterator[Samples]:
        """The prepared speech as float32 chunks at ``prepared.sample_rate``, through the same
        scheduler as every request, but not metered: for realtime speech sessions, which
        reserve each piece's credits and leave one usage record for the whole session
        (``core.realtime_speech``). Everyone else uses ``encoded``/``synthesize``."""
        return self._pcm(prepared)


@dataclass(frozen=True)
class ClonedVoice:
    """A ``ref_audio`` voice an engine already cloned, to speak more pieces with."""

    engine: str
    version: str
    state: bytes


def _reusable_state(
    reuse: ClonedVoice | None, request: SpeechRequest, engine: TTSHandle
) -> bytes | None:
    """``reuse``'s state when it fits: a ref_audio request on the engine (name, version) that
    made it."""
    if reuse is None or request.ref_audio is None:
        return None
    if (engine.name, engine.version) != (reuse.engine, reuse.version):
        return None  # the engine changed: its state would not fit
    return reuse.state


def cloned_voice(prepared: PreparedSpeech) -> ClonedVoice | None:
    """The cloned voice ``prepared`` speaks with (None: a preset or stored voice)."""
    state = prepared.pieces[0].voice_state if prepared.pieces else None
    if state is None:
        return None
    return ClonedVoice(prepared.engine.name, prepared.engine.version, state)


class _Delivery:
    """What a stream has handed to its client, in pieces: a piece counts (all its characters)
    once audio of it went out, so the charge of a stream the client left is the characters of
    the pieces it received; the whole input's count applies only when the stream completes."""

    def __init__(self, prepared: PreparedSpeech, meter: Metering) -> None:
        self._pieces = prepared.pieces
        self._meter = meter
        self._fed = -1
        self._sent = -1

    def fed(self, index: int) -> None:
        """Audio of piece ``index`` went into the encoder."""
        self._fed = index

    def sent(self) -> None:
        """Everything the encoder gave so far reached the client."""
        if self._fed > self._sent:
            self._sent = self._fed
            delivered = sum(len(p.text) for p in self._pieces[: self._sent + 1])
            self._meter.delivered_credits = delivered
            self._meter.characters = delivered


async def _off_loop(fmt: AudioFormat, work: Callable[..., bytes], *args: Samples) -> bytes:
    """Compressing encoders (MP3, Opus: ~40 ms per 5 s of audio) run in a worker thread, away
    from the event loop that serves every other request; PCM and WAV are plain copies, cheaper
    than the hop to a thread."""
    if fmt in RAW_FORMATS:
        return work(*args)
    return await run_in_thread(work, *args)
