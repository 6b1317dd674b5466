"""``POST /v1/audio/transcriptions``, shared by the Mistral and OpenAI shapes. A form with
``response_format`` (or ``timestamp_granularities[]``) is OpenAI's; any other is Mistral's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from voxserve.api.adapters.mistral import transcriptions as mistral_transcriptions
from voxserve.api.adapters.openai import transcriptions as openai_transcriptions
from voxserve.api.deps import CurrentOwner, ServicesDep
from voxserve.api.forms import TranscriptionForm, read_transcription_form
from voxserve.core.transcription import AudioSource, TranscriptionRequest

router = APIRouter(tags=["transcription"])


@router.post("/v1/audio/transcriptions", response_model=None)
async def create_transcription(
    request: Request, owner: CurrentOwner, services: ServicesDep
) -> Response:
    """Transcribe a file, a ``file_url`` or a ``file_id`` (multipart or urlencoded form).

    Fields: ``model``, ``language`` (else detected), ``temperature``, repeated
    ``timestamp_granularities`` (segment, word), repeated ``context_bias``, ``diarize``,
    ``stream``; OpenAI's ``response_format`` (json, text, srt, vtt, verbose_json) and ``prompt``.
    JSON answers carry Mistral's keys (model, text, language, segments, usage), a superset of
    OpenAI's.
    """
    form = await read_transcription_form(request)
    response_format = form.response_format or "json"
    if form.openai_style:
        request.state.error_shape = "openai"
        openai_transcriptions.check_format(response_format)
    service = services.transcription
    prepared = await service.prepare(to_core(form, owner.id))
    if form.openai_style and (form.stream or not openai_transcriptions.wants_json(response_format)):
        return await openai_transcriptions.create_transcription(
            prepared, service, response_format=response_format, stream=form.stream
        )
    model = form.model or prepared.engine.name
    return await mistral_transcriptions.create_transcription(
        prepared, model, service, stream=form.stream
    )


def to_core(form: TranscriptionForm, owner_id: str) -> TranscriptionRequest:
    return TranscriptionRequest(
        owner_id=owner_id,
        source=AudioSource(data=form.file, url=form.file_url, file_id=form.file_id),
        model=form.model,
        language=form.language,
        temperature=form.temperature,
        word_timestamps="word" in form.timestamp_granularities,
        hotwords=form.context_bias,
        prompt=form.prompt,
        diarize=form.diarize,
    )
