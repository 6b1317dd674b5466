"""``GET /v1/models``: every model this server can serve, in the list shape both SDKs read.

Each entry is an OpenAI ``model`` object (``id, object, created, owned_by``) that is also a
Mistral ``BaseModelCard`` (``type: "base"`` and ``capabilities`` flags, plus Mistral's
``audio_speech_capabilities``/``audio_transcription_capabilities``). What neither shape has
(kind, preset voice count, languages) sits under ``voxserve``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from voxserve.api.deps import CurrentOwner, ModelListingDep
from voxserve.core.models_listing import ModelInfo
from voxserve.core.presets import PRESET_CREATED_AT
from voxserve.core.realtime import STREAMING_DELAY_RANGE_MS

router = APIRouter(tags=["models"])

CREATED = int(PRESET_CREATED_AT.timestamp())
"""Engines have no creation time; the wire requires one."""
SPEECH_FORMATS = ["mp3", "wav", "pcm", "flac", "opus", "aac"]


class ModelCapabilities(BaseModel):
    """Mistral's capability flags."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    completion_chat: bool
    audio: bool
    """The model takes audio input (chat)."""
    audio_transcription: bool
    audio_transcription_realtime: bool = False
    """Serves realtime transcription sockets (``/v1/audio/transcriptions/realtime``)."""
    audio_speech: bool


class SpeechCapabilities(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    modes: list[str] = ["offline"]
    instruction: bool = False
    response_formats: list[str] = SPEECH_FORMATS


class DelayRange(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    min: int
    """Shortest ``target_streaming_delay_ms`` taken."""
    max: int


class TranscriptionCapabilities(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    modes: list[str] = ["offline"]
    diarization: bool
    context_bias: bool
    """Takes ``context_bias`` hotwords."""
    timestamp_granularities: list[Literal["segment", "word"]]
    languages: list[str]
    """ISO-639-1 codes; empty means any the model knows."""
    turn_detection: bool = False
    """Realtime sessions send turn events (Silero VAD)."""
    streaming_delays_ms: list[DelayRange] | None = None
    """Realtime: the ``target_streaming_delay_ms`` ranges taken."""


class ModelExtension(BaseModel):
    """voxserve's own facts about a model."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    kind: Literal["speech", "transcription", "chat"]
    default: bool
    """Hosted model names of this kind resolve to this engine."""
    voices: int | None = None
    """Speech: preset voices."""
    cloning: bool | None = None
    """Speech: custom voices and ``ref_audio``."""
    languages: list[str] | None = None
    language_detection: bool | None = None
    """Transcription: detects the language when none is given."""
    audio_native: bool | None = None
    """Chat: the model hears audio itself (else it reads transcripts)."""


class ModelCard(BaseModel):
    """One model: an engine, under its engine name."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "faster-whisper-base",
                    "object": "model",
                    "created": 1767225600,
                    "owned_by": "voxserve",
                    "type": "base",
                    "name": "faster-whisper-base",
                    "description": "Speech to text",
                    "aliases": ["voxtral-mini-latest", "whisper-1"],
                    "capabilities": {
                        "completion_chat": False,
                        "audio": False,
                        "audio_transcription": True,
                        "audio_speech": False,
                    },
                    "audio_transcription_capabilities": {
                        "modes": ["offline"],
                        "diarization": False,
                        "context_bias": True,
                        "timestamp_granularities": ["segment", "word"],
                        "languages": [],
                    },
                    "voxserve": {
                        "kind": "transcription",
                        "default": True,
                        "language_detection": True,
                        "languages": [],
                    },
                }
            ]
        },
    )

    id: str
    """Pass it as ``model`` to pick this engine."""
    object: Literal["model"] = "model"
    created: int = CREATED
    owned_by: str = "voxserve"
    type: Literal["base"] = "base"
    name: str
    description: str
    aliases: list[str]
    """The hosted names that resolve to this model."""
    capabilities: ModelCapabilities
    max_context_length: int | None = None
    """Chat: tokens of conversation plus answer."""
    audio_speech_capabilities: SpeechCapabilities | None = None
    audio_transcription_capabilities: TranscriptionCapabilities | None = None
    voxserve: ModelExtension


class ModelList(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [
                        {
                            "id": "piper",
                            "object": "model",
                            "created": 1767225600,
                            "owned_by": "voxserve",
                            "type": "base",
                            "name": "piper",
                            "description": "Text to speech, 1 preset voices",
                            "aliases": ["voxtral-mini-tts-latest", "tts-1"],
                            "capabilities": {
                                "completion_chat": False,
                                "audio": False,
                                "audio_transcription": False,
                                "audio_speech": True,
                            },
                            "audio_speech_capabilities": {
                                "modes": ["offline"],
                                "instruction": False,
                                "response_formats": ["mp3", "wav", "pcm", "flac", "opus", "aac"],
                            },
                            "voxserve": {
                                "kind": "speech",
                                "default": True,
                                "voices": 1,
                                "cloning": False,
                                "languages": ["en"],
                            },
                        }
                    ],
                }
            ]
        },
    )

    object: Literal["list"] = "list"
    data: list[ModelCard]


@router.get("/v1/models", response_model=ModelList, response_model_exclude_none=True)
async def list_models(owner: CurrentOwner, listing: ModelListingDep) -> ModelList:
    """Speech, transcription and chat models, each with its capabilities and aliases (the hosted
    names that resolve to it)."""
    return ModelList(data=[card(m) for m in listing.models()])


@router.get(
    "/v1/models/{model_id:path}", response_model=ModelCard, response_model_exclude_none=True
)
async def retrieve_model(model_id: str, owner: CurrentOwner, listing: ModelListingDep) -> ModelCard:
    """One model, by id or by a hosted name that resolves to it (404 otherwise)."""
    return card(listing.model(model_id))


def card(model: ModelInfo) -> ModelCard:
    flags = ModelCapabilities(
        completion_chat=model.kind == "chat",
        audio=model.kind == "chat",
        audio_transcription=model.kind == "transcription",
        audio_transcription_realtime=model.kind == "transcription" and model.realtime,
        audio_speech=model.kind == "speech",
    )
    return ModelCard(
        id=model.id,
        name=model.id,
        description=model.description,
        aliases=list(model.aliases),
        capabilities=flags,
        max_context_length=model.context_length,
        audio_speech_capabilities=(
            SpeechCapabilities(modes=["offline", "realtime"]) if model.kind == "speech" else None
        ),
        audio_transcription_capabilities=transcription(model),
        voxserve=extension(model),
    )


def transcription(model: ModelInfo) -> TranscriptionCapabilities | None:
    if model.kind != "transcription":
        return None
    low, high = STREAMING_DELAY_RANGE_MS
    return TranscriptionCapabilities(
        modes=["offline", "realtime"] if model.realtime else ["offline"],
        turn_detection=model.realtime,
        streaming_delays_ms=[DelayRange(min=low, max=high)] if model.realtime else None,
        diarization=model.diarization,
        context_bias=model.hotwords,
        timestamp_granularities=["segment", "word"] if model.word_timestamps else ["segment"],
        languages=list(model.languages),
    )


def extension(model: ModelInfo) -> ModelExtension:
    ext = ModelExtension(kind=model.kind, default=model.default)
    if model.kind == "speech":
        ext.voices, ext.cloning, ext.languages = model.voices, model.cloning, list(model.languages)
    elif model.kind == "transcription":
        ext.language_detection, ext.languages = model.language_detection, list(model.languages)
    else:
        ext.audio_native = model.audio_native
    return ext
