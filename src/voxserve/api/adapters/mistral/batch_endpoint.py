"""The Mistral shape's batch endpoints: a batch request's ``body`` read as the synchronous route
reads its form, served by the same services, answered with the same JSON and error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from voxserve.api.adapters.mistral import convert, errors
from voxserve.api.adapters.mistral.protocol.batch import BatchTranscriptionBody
from voxserve.api.errors import from_vox
from voxserve.core.batch_types import BatchEndpoint, BatchOutcome
from voxserve.core.transcription import AudioSource, TranscriptionRequest, TranscriptionService
from voxserve.errors import ValidationFailed, VoxError


class TranscriptionBatch:
    """``/v1/audio/transcriptions`` in a batch job (``file_id`` or ``file_url``, no upload)."""

    path = "/v1/audio/transcriptions"
    metered_as = "transcription"

    def check(self, body: Mapping[str, Any], model: str | None) -> str | None:
        wire = _parse(body)
        return wire.model or model

    async def run(
        self,
        body: Mapping[str, Any],
        model: str | None,
        owner_id: str,
        transcription: TranscriptionService,
    ) -> BatchOutcome:
        try:
            wire = _parse(body)
            request = _request(wire, wire.model or model, owner_id)
            prepared = await transcription.prepare(request)
            transcript = await transcription.transcribe(prepared)
        except VoxError as exc:
            return BatchOutcome(exc.status, self.error_body(exc))
        words = prepared.options.word_timestamps
        segments = [convert.segment(s, words) for s in transcript.segments]
        answer = convert.transcription_response(
            prepared,
            request.model or prepared.engine.name,
            transcript.text,
            transcript.language,
            segments,
        )
        return BatchOutcome(200, answer.model_dump())

    def error_body(self, exc: VoxError) -> Mapping[str, Any]:
        return errors.render_error(from_vox(exc))


ENDPOINTS: dict[str, BatchEndpoint] = {TranscriptionBatch.path: TranscriptionBatch()}
"""What batch jobs may target, by path (given to ``open_services``)."""


def _parse(body: Mapping[str, Any]) -> BatchTranscriptionBody:
    if "file" in body:
        raise ValidationFailed(
            "file: a batch body cannot carry the audio; upload it to /v1/files and give "
            "its file_id (or give a file_url).",
            field="file",
        )
    try:
        wire = BatchTranscriptionBody.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ValidationFailed(f"{where}: {first['msg']}", field=where) from None
    if (wire.file_id is None) == (wire.file_url is None):
        raise ValidationFailed("Give exactly one of file_id or file_url.", field="file_id")
    return wire


def _request(
    wire: BatchTranscriptionBody, model: str | None, owner_id: str
) -> TranscriptionRequest:
    return TranscriptionRequest(
        owner_id=owner_id,
        source=AudioSource(url=wire.file_url, file_id=wire.file_id),
        model=model,
        language=wire.language,
        temperature=wire.temperature,
        word_timestamps="word" in wire.timestamp_granularities,
        hotwords=tuple(wire.context_bias),
        diarize=wire.diarize,
    )
