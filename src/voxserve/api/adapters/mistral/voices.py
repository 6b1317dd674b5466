"""Mistral voice library: ``/v1/audio/voices`` and ``/v2/audio/voices``."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from voxserve.api.adapters.mistral.convert import (
    emotion_samples,
    voice_changes,
    voice_draft,
    voice_response,
)
from voxserve.api.adapters.mistral.protocol import (
    GenderLiteral,
    VoiceCreateRequest,
    VoiceListPage,
    VoiceListResponse,
    VoiceResponse,
    VoiceUpdateRequest,
)
from voxserve.api.deps import CurrentOwner, VoiceServiceDep
from voxserve.errors import ValidationFailed
from voxserve.storage.protocol import VoiceQuery

router = APIRouter(tags=["voices (Mistral)"])
VoiceTypeParam = Literal["all", "custom", "preset"]


@router.get("/v1/audio/voices", response_model=VoiceListResponse)
async def list_voices(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    type: VoiceTypeParam = "all",
) -> VoiceListResponse:
    """List voices with offset pagination (deprecated upstream in favour of v2)."""
    items, total = await voices.list(
        owner.id, type=type, query=VoiceQuery(), offset=offset, limit=limit
    )
    return VoiceListResponse(
        items=[voice_response(v) for v in items],
        total=total,
        page=offset // limit + 1,
        page_size=limit,
        total_pages=math.ceil(total / limit),
    )


@router.get("/v2/audio/voices", response_model=VoiceListPage)
async def search_voices(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    page_token: str | None = None,
    type: VoiceTypeParam = "all",
    gender: Annotated[list[GenderLiteral] | None, Query()] = None,
    language: Annotated[list[str] | None, Query()] = None,
    query: str | None = None,
    kind: Literal["ivc", "pvc"] | None = None,
) -> VoiceListPage:
    """Search voices with an opaque cursor (``next_page_token``)."""
    offset = decode_cursor(page_token)
    if kind == "pvc":
        return VoiceListPage(data=[], next_page_token=None)  # no professional clones here
    filters = VoiceQuery(text=query, genders=tuple(gender or ()), languages=tuple(language or ()))
    items, total = await voices.list(
        owner.id,
        type="custom" if kind == "ivc" else type,
        query=filters,
        offset=offset,
        limit=page_size,
    )
    following = offset + len(items)
    return VoiceListPage(
        data=[voice_response(v) for v in items],
        next_page_token=encode_cursor(following) if following < total else None,
    )


@router.post("/v1/audio/voices", response_model=VoiceResponse)
async def create_voice(
    body: VoiceCreateRequest, owner: CurrentOwner, voices: VoiceServiceDep
) -> VoiceResponse:
    """Clone a voice from a base64 sample (answers 200, as the SDK requires)."""
    return voice_response(await voices.create(owner.id, voice_draft(body)))


@router.get("/v1/audio/voices/{voice_id}", response_model=VoiceResponse)
async def get_voice(voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep) -> VoiceResponse:
    return voice_response(await voices.get(owner.id, voice_id))


@router.patch("/v1/audio/voices/{voice_id}", response_model=VoiceResponse)
async def update_voice(
    voice_id: str, body: VoiceUpdateRequest, owner: CurrentOwner, voices: VoiceServiceDep
) -> VoiceResponse:
    sent = body.model_dump(exclude_unset=True)
    view = await voices.update(
        owner.id, voice_id, voice_changes(sent), emotion_samples(body.emotion_samples)
    )
    return voice_response(view)


@router.delete("/v1/audio/voices/{voice_id}", response_model=VoiceResponse)
async def delete_voice(
    voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep
) -> VoiceResponse:
    """Delete a custom voice and its samples; answers the deleted voice."""
    return voice_response(await voices.delete(owner.id, voice_id))


@router.get(
    "/v1/audio/voices/{voice_id}/sample",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}},
)
async def get_voice_sample(voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep) -> Response:
    """The voice's sample as mono 16-bit WAV (``Content-Type: audio/wav`` exactly)."""
    return Response(await voices.sample(owner.id, voice_id), media_type="audio/wav")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        offset = json.loads(raw)["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValidationFailed(
            "page_token: not a token this server issued.", field="page_token"
        ) from None
    if not isinstance(offset, int) or offset < 0:
        raise ValidationFailed("page_token: not a token this server issued.", field="page_token")
    return offset
