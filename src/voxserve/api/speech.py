"""``POST /v1/audio/speech``, shared by the Mistral and OpenAI shapes: a body with ``voice`` is
OpenAI's (raw audio or OpenAI SSE), any other is Mistral's (``{"audio_data"}`` or Mistral SSE)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from voxserve.api.adapters.mistral import speech as mistral_speech
from voxserve.api.adapters.mistral.protocol import SpeechRequest as MistralSpeechRequest
from voxserve.api.adapters.openai import speech as openai_speech
from voxserve.api.adapters.openai.protocol import SpeechRequest as OpenAISpeechRequest
from voxserve.api.deps import CurrentOwner, ServicesDep

router = APIRouter(tags=["speech"])
M = TypeVar("M", bound=BaseModel)

BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        MistralSpeechRequest.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        ),
                        OpenAISpeechRequest.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        ),
                    ]
                }
            }
        },
    }
}


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


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestValidationError(
            [{"loc": ["body"], "msg": "The body is not valid JSON.", "type": "json_invalid"}]
        ) from None
    if not isinstance(body, dict):
        raise RequestValidationError(
            [{"loc": ["body"], "msg": "The body must be a JSON object.", "type": "dict_type"}]
        )
    return body


def parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
