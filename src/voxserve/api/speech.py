"""``POST /v1/audio/speech``, shared by the Mistral and OpenAI shapes: a body with ``voice`` is
OpenAI's (raw audio or OpenAI SSE), any other is Mistral's (``{"audio_data"}`` or Mistral SSE)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from voxserve.api.adapters.mistral import speech as mistral_speech
from voxserve.api.adapters.mistral.protocol import SpeechRequest as MistralSpeechRequest
from voxserve.api.adapters.openai import speech as openai_speech
from voxserve.api.adapters.openai.protocol import SpeechRequest as OpenAISpeechRequest
from voxserve.api.bodies import json_body, one_of_body, parse
from voxserve.api.deps import CurrentOwner, ServicesDep

router = APIRouter(tags=["speech"])

BODY_SCHEMA = one_of_body(MistralSpeechRequest, OpenAISpeechRequest)


@router.post("/v1/audio/speech", openapi_extra=BODY_SCHEMA, response_model=None)
async def create_speech(request: Request, owner: CurrentOwner, services: ServicesDep) -> Response:
    """Generate speech. Mistral body: ``voice_id``/``ref_audio``, answers ``{"audio_data"}`` or
    SSE. OpenAI body: ``voice``, answers audio bytes or SSE (``stream_format``)."""
    body = await json_body(request)
    if "voice" in body:
        request.state.error_shape = "openai"
        openai_body = parse(OpenAISpeechRequest, body)
        return await openai_speech.create_speech(openai_body, owner.id, services.speech)
    mistral_body = parse(MistralSpeechRequest, body)
    return await mistral_speech.create_speech(mistral_body, owner.id, services.speech)
