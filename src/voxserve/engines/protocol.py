"""Engine protocols: text-to-speech, speech-to-text and chat.

Engines are blocking and stream-first: ``TTSEngine.synthesize`` yields PCM chunks as they are
made; ``STTEngine.transcribe`` returns eager info plus lazy segments (as faster-whisper does).
The ``EngineManager`` loads them lazily, bounds their concurrency and runs every blocking call in a
worker thread, so the event loop never waits on inference. Engines never import ``core`` or ``api``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from voxserve.audio.types import AudioClip, Samples

Gender = Literal["female", "male", "neutral"]
Task = Literal["transcribe", "translate"]
"""What a transcription produces: the words spoken, or their English translation."""


# --------------------------------------------------------------------------- text-to-speech


@dataclass(frozen=True)
class PresetVoice:
    """A voice an engine ships with."""

    id: str
    """Engine-local voice id (``en_US-joe-medium``, ``en-us``); voxserve's public id is
    ``<engine>:<id>``."""
    name: str
    languages: tuple[str, ...]
    gender: Gender | None = None
    emotions: tuple[str, ...] = ()
    """Emotional variants this voice has (``happy``, ``sad``)."""


@dataclass(frozen=True)
class TTSCapabilities:
    sample_rate: int
    voices: tuple[PresetVoice, ...]
    languages: tuple[str, ...]
    cloning: bool = False
    """Zero-shot cloning from a reference clip (``ref_audio``, custom voices)."""
    max_concurrency: int = 1
    """Syntheses this engine runs at once; more wait in the manager's bounded queue."""


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    """One piece of text (the speech service splits long input at sentence boundaries)."""
    voice: str | None = None
    """Engine-local preset voice id (None: the engine's default)."""
    voice_state: bytes | None = None
    """A cloned voice state made by ``clone_voice`` (only for engines with ``cloning``)."""
    speed: float = 1.0
    """0.25 to 4.0; 1.0 is the voice's natural pace."""
    language: str | None = None
    emotion: str | None = None
    """Requested emotion, for engines whose preset voices have emotional variants."""


@runtime_checkable
class TTSEngine(Protocol):
    """A speech synthesiser. Every method may block; the manager calls them in worker threads."""

    name: str
    """Engine name used in model ids and voice ids (``espeak``, ``piper``)."""
    version: str
    """Changes whenever a stored voice state would no longer fit (weights, code)."""

    def capabilities(self) -> TTSCapabilities: ...

    def load(self) -> None:
        """Load weights; called once before the first use, in a worker thread."""

    def unload(self) -> None:
        """Free the weights; ``load`` may be called again later."""

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        """Yield mono float32 chunks at ``capabilities().sample_rate``.

        Raises:
            Unsupported: the request needs something this engine cannot do.
            EngineFailure: synthesis failed.
        """

    def clone_voice(self, reference: AudioClip) -> bytes:
        """Compute a reusable voice state from a reference clip.

        Raises:
            Unsupported: the engine cannot clone.
        """


# --------------------------------------------------------------------------- speech-to-text


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...] | None = None
    speaker: str | None = None
    """Who spoke it, when the transcription was diarized (a name or ``speaker_N``)."""


@dataclass(frozen=True)
class TranscriptionInfo:
    """Known before the first segment is decoded."""

    language: str | None
    language_probability: float | None
    duration: float


@dataclass(frozen=True)
class TranscriptionOptions:
    language: str | None = None
    """ISO-639-1 code; None detects it."""
    temperature: float | None = None
    word_timestamps: bool = False
    hotwords: tuple[str, ...] = ()
    """Terms to favour (Mistral's ``context_bias``)."""
    prompt: str | None = None
    """Text that precedes the audio (OpenAI's ``prompt``)."""
    task: Task = "transcribe"
    """``translate``: English text whatever the language spoken (engines with ``translation``;
    others raise ``Unsupported``)."""
    diarize: bool = False
    """Label segments with speakers (only engines with ``diarization``; otherwise voxserve's
    diarizer labels the words afterwards)."""


@dataclass(frozen=True)
class STTCapabilities:
    languages: tuple[str, ...]
    """ISO-639-1 codes; empty means any the model knows."""
    language_detection: bool = False
    word_timestamps: bool = False
    hotwords: bool = False
    diarization: bool = False
    translation: bool = False
    """Can translate speech in other languages to English text (``task="translate"``)."""
    sample_rate: int = 16000
    """Rate the engine wants its input at."""
    max_concurrency: int = 1


@runtime_checkable
class STTEngine(Protocol):
    """A speech recogniser. Every method may block; the manager calls them in worker threads."""

    name: str
    version: str

    def capabilities(self) -> STTCapabilities: ...

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Start a transcription: info now, segments lazily as they are decoded.

        ``audio`` is mono at ``capabilities().sample_rate``.

        Raises:
            Unsupported: e.g. a language the engine does not know.
            EngineFailure: recognition failed.
        """


# --------------------------------------------------------------------------- chat


@dataclass(frozen=True)
class AudioPart:
    """Audio inside a chat message, decoded, with its original encoded bytes."""

    clip: AudioClip
    encoded: bytes
    format: str
    """Container name of ``encoded`` (``wav``, ``mp3``...)."""


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    audio: tuple[AudioPart, ...] = ()
    """Audio parts, only for engines with ``audio_input``; others get transcripts in ``content``."""


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatDelta:
    """A piece of the answer; the last one carries ``finish_reason`` and token counts."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class ChatCapabilities:
    context_length: int
    audio_input: bool = False
    max_concurrency: int = 1
    models: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class ChatEngine(Protocol):
    """A chat model. Every method may block; the manager calls them in worker threads."""

    name: str
    version: str

    def capabilities(self) -> ChatCapabilities: ...

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def count_tokens(self, request: ChatRequest) -> int:
        """Prompt tokens the request would use (to refuse over-long conversations early)."""

    def complete(self, request: ChatRequest) -> Iterator[ChatDelta]:
        """Yield the answer piece by piece.

        Raises:
            InvalidRequest: the conversation does not fit the context.
            EngineFailure: generation failed.
        """
