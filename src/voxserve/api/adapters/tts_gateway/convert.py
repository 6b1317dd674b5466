"""Gateway wire models <-> core types."""

from __future__ import annotations

from typing import Any

from voxserve.api.adapters.tts_gateway.protocol import (
    TtsClonedVoice,
    TtsCloneRequest,
    TtsGenerateRequest,
    TtsPresetVoice,
    TtsSavedVoice,
    TtsUpdatedVoice,
)
from voxserve.audio.decode import measure_duration
from voxserve.core.b64 import decode_base64
from voxserve.core.gateway_presets import PresetFamily
from voxserve.core.ids import iso
from voxserve.core.presets import Preset
from voxserve.core.speech import SpeechRequest
from voxserve.core.text import chunk_text, strip_tags
from voxserve.core.voice_types import VoiceDraft, VoiceView
from voxserve.errors import InvalidRequest, ValidationFailed
from voxserve.offload import run_in_thread

CHUNK_CHARACTERS = 1000
"""Texts longer than this are reported as split into sentence-bounded chunks of this size."""
CLONE_MIN_SECONDS = 5.0
"""The gateway asks for 5 to 30 s samples; longer ones are trimmed by the voice service."""


def to_core(body: TtsGenerateRequest, owner_id: str) -> SpeechRequest:
    """Raises InvalidRequest: neither or both of ``voice_id`` and ``ref_audio``."""
    if not body.voice_id and not body.ref_audio:
        raise InvalidRequest("voice_id or ref_audio is required.", field="voice_id")
    if body.voice_id and body.ref_audio:
        raise InvalidRequest("Give either voice_id or ref_audio, not both.", field="ref_audio")
    return SpeechRequest(
        owner_id=owner_id,
        text=body.input,
        voice_id=body.voice_id,
        ref_audio=decode_base64(body.ref_audio, "ref_audio") if body.ref_audio else None,
        speed=body.speed,
    )


def chunk_count(text: str, max_chars: int = CHUNK_CHARACTERS) -> int:
    """How many sentence-bounded chunks of at most ``max_chars`` the spoken text splits into
    (the engine then speaks them sentence by sentence)."""
    return len(chunk_text(strip_tags(text), max_chars))


async def check_clone_sample(data: bytes) -> None:
    """Refuse samples shorter than the gateway's 5 seconds (before anything is stored).

    Raises:
        ValidationFailed: undecodable or too short audio.
    """
    try:
        seconds = await run_in_thread(_duration, data)
    except ValidationFailed as exc:
        raise ValidationFailed(f"ref_audio: {exc.message}", field="ref_audio") from None
    if seconds < CLONE_MIN_SECONDS:
        raise ValidationFailed(
            f"ref_audio: the audio is {seconds:.2f} s long; 5 to 30 s are needed.",
            field="ref_audio",
        )


def _duration(data: bytes) -> float:
    # From metadata or packets: nothing is decoded, and a long file is read no further than
    # the shortest length that passes.
    return measure_duration(data, limit=CLONE_MIN_SECONDS)


def voice_draft(body: TtsCloneRequest, sample: bytes) -> VoiceDraft:
    return VoiceDraft(
        name=body.name,
        sample=sample,
        languages=(body.language,) if body.language else (),
        gender=body.gender,
    )


def voice_changes(sent: dict[str, Any]) -> dict[str, Any]:
    """The PATCH fields as core voice fields; null clears one (the name cannot be cleared)."""
    if "name" in sent and sent["name"] is None:
        raise ValidationFailed("name: cannot be null.", field="name")
    changes = {k: v for k, v in sent.items() if k in ("name", "gender", "tags")}
    if "language" in sent:
        changes["languages"] = [sent["language"]] if sent["language"] else []
    return changes


def family_voice(family: PresetFamily, served_by: Preset | None) -> TtsPresetVoice:
    """A named preset family; its id is the neutral variant's."""
    ids = family.variants()
    return TtsPresetVoice(
        id=ids[family.emotions[0]],
        name=family.name,
        language=family.language,
        languages=[family.language],
        gender=family.gender,
        variants=list(family.emotions),
        engine=served_by.engine if served_by else None,
        variant_ids=ids,
        maps_to=served_by.id if served_by else None,
    )


def primary_language(view: VoiceView) -> str | None:
    return view.languages[0] if view.languages else None


def cloned_voice(view: VoiceView) -> TtsClonedVoice:
    return TtsClonedVoice(
        id=view.id,
        name=view.name,
        mistral_voice_id=view.id,
        language=primary_language(view),
        gender=view.gender,
        created_at=iso(view.created_at),
        trimmed_seconds=view.trimmed_seconds,
    )


def saved_voice(view: VoiceView, *, base_url: str) -> TtsSavedVoice:
    return TtsSavedVoice(
        id=view.id,
        name=view.name,
        mistral_voice_id=view.id,
        ref_audio_url=f"{base_url.rstrip('/')}/api/tts/voices/{view.id}/sample",
        language=primary_language(view),
        gender=view.gender,
        tags=list(view.tags or ()),
        created_at=iso(view.created_at),
    )


def updated_voice(view: VoiceView) -> TtsUpdatedVoice:
    return TtsUpdatedVoice(
        id=view.id,
        name=view.name,
        language=primary_language(view),
        gender=view.gender,
        tags=list(view.tags or ()),
    )


def preset_voice(view: VoiceView) -> TtsPresetVoice:
    return TtsPresetVoice(
        id=view.id,
        name=view.name,
        language=primary_language(view),
        languages=list(view.languages),
        gender=view.gender,
        variants=list(view.emotions),
        engine=view.engine,
    )
