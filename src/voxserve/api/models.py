"""``GET /v1/models``: every model this server can serve, in the list shape both SDKs read.

Each entry is an OpenAI ``model`` object (``id, object, created, owned_by``) that is also a
Mistral ``BaseModelCard`` (``type: "base"`` and ``capabilities`` flags, plus Mistral's
``audio_speech_capabilities``/``audio_transcription_capabilities``). What neither shape has
(kind, preset voice count, languages) sits under ``voxserve``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from voxserve.api.deps import CurrentOwner, ServicesDep
from voxserve.bootstrap import Services
from voxserve.core.models_listing import ModelInfo, ModelListing
from voxserve.core.presets import PRESET_CREATED_AT

router = APIRouter(tags=["models"])

CREATED = int(PRESET_CREATED_AT.timestamp())
"""Engines have no creation time; the wire requires one."""
SPEECH_FORMATS = ["mp3", "wav", "pcm", "flac", "opus", "aac"]


@router.get("/v1/models")
async def list_models(owner: CurrentOwner, services: ServicesDep) -> dict[str, Any]:
    """Speech, transcription and chat models, each with its capabilities and aliases (the hosted
    names that resolve to it)."""
    return {"object": "list", "data": [card(m) for m in listing(services).models()]}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(
    model_id: str, owner: CurrentOwner, services: ServicesDep
) -> dict[str, Any]:
    """One model, by id or by a hosted name that resolves to it (404 otherwise)."""
    return card(listing(services).model(model_id))


def listing(services: Services) -> ModelListing:
    return ModelListing(services.engines, services.speech, services.transcription, services.chat)


def card(model: ModelInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": model.id,
        "object": "model",
        "created": CREATED,
        "owned_by": "voxserve",
        "type": "base",
        "name": model.id,
        "description": model.description,
        "aliases": list(model.aliases),
        "capabilities": {
            "completion_chat": model.kind == "chat",
            "audio": model.kind == "chat",
            "audio_transcription": model.kind == "transcription",
            "audio_speech": model.kind == "speech",
        },
        "voxserve": extension(model),
    }
    if model.context_length is not None:
        body["max_context_length"] = model.context_length
    if model.kind == "speech":
        body["audio_speech_capabilities"] = {
            "modes": ["offline"],
            "instruction": False,
            "response_formats": SPEECH_FORMATS,
        }
    if model.kind == "transcription":
        granularities = ["segment", "word"] if model.word_timestamps else ["segment"]
        body["audio_transcription_capabilities"] = {
            "modes": ["offline"],
            "diarization": model.diarization,
            "context_bias": model.hotwords,
            "timestamp_granularities": granularities,
            "languages": list(model.languages),
        }
    return body


def extension(model: ModelInfo) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": model.kind, "default": model.default}
    if model.kind == "speech":
        body.update(voices=model.voices, cloning=model.cloning, languages=list(model.languages))
    elif model.kind == "transcription":
        body.update(language_detection=model.language_detection, languages=list(model.languages))
    else:
        body.update(audio_native=model.audio_native)
    return body
