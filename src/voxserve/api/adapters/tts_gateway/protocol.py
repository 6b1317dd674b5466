"""Wire models of the ``/api/tts`` gateway (seed 002): every reply is ``{"code": 0, "data": ...}``;
errors are ``{"code": <non-zero>, "message": ...}`` (see ``errors.py``)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
GatewayFormat = Literal["mp3", "wav", "flac", "opus", "pcm"]
GatewayGender = Literal["male", "female"]
LANGUAGE_PATTERN = r"^[a-z]{2,3}([-_][A-Za-z]{2,4})?$"


class TtsReply(BaseModel, Generic[T]):
    """The gateway's success envelope."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    code: int = 0
    """Always 0 on success."""
    data: T


class TtsGenerateRequest(BaseModel):
    """``POST /api/tts/generate``."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "input": "Hello from the gateway.",
                    "voice_id": "en_paul_happy",
                    "response_format": "mp3",
                    "speed": 1.0,
                }
            ]
        },
    )

    input: str
    """Text to speak, at most 5,000 characters (``limits.speech_max_characters``); texts over
    1,000 characters are split at sentence boundaries."""
    voice_id: str | None = None
    """A preset id (``GET /api/tts/voices/presets``), a saved clone's id, or a hosted name such
    as ``en_paul_happy``. Required unless ``ref_audio`` is given."""
    ref_audio: str | None = None
    """Base64 reference clip for one-off cloning. Required unless ``voice_id`` is given."""
    response_format: GatewayFormat = "mp3"
    """``pcm``: raw float32 little-endian mono at the engine's rate (``/v1/audio/speech``
    serves Mistral's at 24 kHz); ``wav``: 16-bit PCM; all at the engine's rate (opus rounded
    up to a rate Opus takes: 8, 12, 16, 24 or 48 kHz)."""
    speed: float = Field(1.0, ge=0.25, le=4.0)
    """Playback speed, 0.25 to 4.0."""


class TtsStreamRequest(TtsGenerateRequest):
    """``POST /api/tts/stream``: as ``generate``, answered as SSE; ``pcm`` by default."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "input": "Hello from the gateway.",
                    "voice_id": "piper:en_US-joe-medium",
                    "response_format": "pcm",
                }
            ]
        }
    )

    response_format: GatewayFormat = "pcm"


class TtsGeneration(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    audio_data: str
    """The whole file, base64."""
    format: GatewayFormat
    generation_id: str
    audio_url: str
    """Serves the audio without a key until ``retention.generated_audio_hours`` pass."""
    chunks: int
    """Sentence-bounded chunks of at most 1,000 characters the text was split into."""
    credits_used: int
    """One per character of the input (inline tags excluded)."""


class TtsCloneRequest(BaseModel):
    """``POST /api/tts/voices/clone``."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "My voice",
                    "ref_audio": "UklGRiQAAABXQVZFZm10IBAAAAABAAEA...",
                    "language": "en",
                    "gender": "female",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    ref_audio: str = Field(min_length=1)
    """Base64 sample, 5 to 30 seconds (longer ones are trimmed to 30 s)."""
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    """Primary language code, e.g. ``en``, ``fr``."""
    gender: GatewayGender | None = None


class TtsVoiceUpdate(BaseModel):
    """``PATCH /api/tts/voices/{id}``: only the fields sent change; null clears one."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={"examples": [{"name": "Narrator", "tags": ["calm"]}]},
    )

    name: str | None = Field(None, min_length=1, max_length=200)
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    gender: GatewayGender | None = None
    tags: list[str] | None = None


class TtsClonedVoice(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    name: str
    mistral_voice_id: str
    """The id to use as ``voice_id`` on ``/v1/audio/speech`` (the same voice)."""
    language: str | None
    gender: str | None
    created_at: str
    trimmed_seconds: float | None = None
    """voxserve extension: seconds cut from a sample longer than 30 s."""


class TtsSavedVoice(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    name: str
    mistral_voice_id: str
    ref_audio_url: str
    """The stored sample (WAV); needs the API key."""
    language: str | None
    gender: str | None
    tags: list[str]
    created_at: str


class TtsVoicePage(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"voices": [], "total": 0, "page": 1, "limit": 50}]},
    )

    voices: list[TtsSavedVoice]
    total: int
    page: int
    limit: int


class TtsUpdatedVoice(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    name: str
    language: str | None
    gender: str | None
    tags: list[str]


class TtsDeletedVoice(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True, json_schema_extra={"examples": [{"id": "voice-7d2e"}]}
    )

    id: str


class TtsPresetVoice(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """Use as ``voice_id``."""
    name: str
    language: str | None
    """The primary language."""
    languages: list[str]
    gender: str | None
    variants: list[str]
    """Emotional variants, chosen with an inline ``[emotion=<variant>]`` tag."""
    engine: str | None
    variant_ids: dict[str, str] | None = None
    """Named presets (Paul, Jane...): each variant's own stable ``voice_id``."""
    maps_to: str | None = None
    """Named presets: the installed voice that speaks for them."""


class TtsPresetList(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "voices": [
                        {
                            "id": "piper:en_US-joe-medium",
                            "name": "Joe",
                            "language": "en-US",
                            "languages": ["en-US"],
                            "gender": "male",
                            "variants": [],
                            "engine": "piper",
                        }
                    ],
                    "total": 1,
                }
            ]
        },
    )

    voices: list[TtsPresetVoice]
    total: int


class TtsAudioDelta(BaseModel):
    """SSE ``event: speech.audio.delta`` of ``/api/tts/stream``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    audio_data: str
    """Base64; the pieces concatenate into one file of ``response_format``."""


class TtsAudioDone(BaseModel):
    """SSE ``event: speech.audio.done``: the last event of a stream that succeeded."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    chunks: int
    """Sentence-bounded chunks of at most 1,000 characters the text was split into."""
    credits_used: int
    """One per character of the input (inline tags excluded)."""


class TtsError(BaseModel):
    """The gateway's error body, and its SSE ``event: error`` after the first audio."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    code: int
    """Non-zero: the HTTP status times 100 plus the kind of error (see ``errors.py``)."""
    message: str
