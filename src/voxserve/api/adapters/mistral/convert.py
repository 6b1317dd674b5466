"""Core voice views <-> Mistral wire models."""

from __future__ import annotations

from typing import Any

from voxserve.api.adapters.mistral.protocol import VoiceCreateRequest, VoiceResponse
from voxserve.core.b64 import decode_base64
from voxserve.core.ids import iso
from voxserve.core.voice_types import VoiceDraft, VoiceView
from voxserve.errors import ValidationFailed

NOT_NULLABLE = ("name", "retention_notice")


def voice_response(view: VoiceView) -> VoiceResponse:
    return VoiceResponse(
        id=view.id,
        name=view.name,
        created_at=iso(view.created_at),
        user_id=view.owner_id,
        type=view.type,
        slug=view.slug,
        languages=list(view.languages),
        gender=view.gender,
        age=view.age,
        tags=list(view.tags) if view.tags is not None else None,
        color=view.color,
        description=view.description,
        retention_notice=view.retention_notice if view.retention_notice is not None else 30,
        trimmed_seconds=view.trimmed_seconds,
        kind="ivc" if view.type == "custom" else None,
        emotions=list(view.emotions),
    )


def voice_draft(body: VoiceCreateRequest) -> VoiceDraft:
    return VoiceDraft(
        name=body.name,
        sample=decode_base64(body.sample_audio, "sample_audio"),
        sample_filename=body.sample_filename,
        slug=body.slug,
        languages=tuple(body.languages),
        gender=body.gender,
        age=body.age,
        tags=tuple(body.tags) if body.tags is not None else None,
        color=body.color,
        description=body.description,
        retention_notice=body.retention_notice,
        emotion_samples=emotion_samples(body.emotion_samples),
    )


def emotion_samples(raw: dict[str, str] | None) -> dict[str, bytes]:
    return {k: decode_base64(v, f"emotion_samples.{k}") for k, v in (raw or {}).items()}


def voice_changes(sent: dict[str, Any]) -> dict[str, Any]:
    """The fields a PATCH body set; null clears a field (an empty list for ``languages``)."""
    changes = {k: v for k, v in sent.items() if k != "emotion_samples"}
    for key in NOT_NULLABLE:
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key}: cannot be null.", field=key)
    if "languages" in changes and changes["languages"] is None:
        changes["languages"] = []
    return changes
