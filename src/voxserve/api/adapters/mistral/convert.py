"""Mistral wire models <-> core types: voices, speech, transcription, chat and files."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from voxserve.api.adapters.mistral.protocol.chat import ChatCompletionRequest as WireChatRequest
from voxserve.api.adapters.mistral.protocol.chat import ChatContentPart, ChatMessageIn
from voxserve.api.adapters.mistral.protocol.files import FileObject
from voxserve.api.adapters.mistral.protocol.speech import SpeechRequest as WireSpeechRequest
from voxserve.api.adapters.mistral.protocol.speech import SpeechUsage
from voxserve.api.adapters.mistral.protocol.transcription import (
    TranscriptionResponse,
    TranscriptionSegment,
    TranscriptionUsage,
    TranscriptionWord,
)
from voxserve.api.adapters.mistral.protocol.voices import VoiceCreateRequest, VoiceResponse
from voxserve.api.forms import TranscriptionForm
from voxserve.api.wire import MAX_OFFSET
from voxserve.core.aliases import resolve_alias
from voxserve.core.b64 import decode_base64
from voxserve.core.chat import AudioInput, ChatCompletionRequest, InputMessage, Part
from voxserve.core.ids import iso
from voxserve.core.speech import PreparedSpeech, SpeechRequest
from voxserve.core.transcription import AudioSource, PreparedTranscription, TranscriptionRequest
from voxserve.core.types import FileRecord, Segment
from voxserve.core.voice_types import VoiceDraft, VoiceView, preset_view
from voxserve.core.voices import VoiceService
from voxserve.errors import Unsupported, ValidationFailed

NOT_NULLABLE = ("name", "retention_notice")


def voice_response(view: VoiceView, *, maps_to: str | None = None) -> VoiceResponse:
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
        maps_to=maps_to or view.id,
    )


async def voice_or_alias(
    voices: VoiceService,
    owner_id: str,
    voice_id: str,
    *,
    engine: str | None,
    pinned: Mapping[str, str],
) -> VoiceResponse:
    """The voice ``voice_id`` names, looked up in the order speech resolves it: a preset, a
    hosted name or configured alias (answered as the local preset it maps to), a custom voice.

    Raises:
        VoiceNotFound: none of these.
    """
    if voices.presets.get(voice_id) is None:
        match = resolve_alias(voice_id, voices.presets, engine=engine, pinned=pinned)
        if match is not None:
            local = preset_view(match.preset)
            about = f"'{voice_id}' is served here by {local.name} ({local.id})."
            view = replace(local, id=voice_id, slug=voice_id, description=about)
            return voice_response(view, maps_to=match.preset.id)
    return voice_response(await voices.get(owner_id, voice_id))


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


def speech_request(body: WireSpeechRequest, owner_id: str) -> SpeechRequest:
    """Raises Unsupported: ``conversation_history`` (no local engine continues a dialogue)."""
    if body.conversation_history:
        raise Unsupported(
            "conversation_history is not supported by the local engines.",
            field="conversation_history",
        )
    return SpeechRequest(
        owner_id=owner_id,
        text=body.input,
        model=body.model,
        voice_id=body.voice_id,
        ref_audio=decode_base64(body.ref_audio, "ref_audio") if body.ref_audio else None,
        speed=body.speed,
        language=body.language,
    )


def speech_usage(prepared: PreparedSpeech) -> SpeechUsage:
    n = prepared.characters
    return SpeechUsage(prompt_tokens=n, total_tokens=n, prompt_characters=n)


def transcription_request(form: TranscriptionForm, owner_id: str) -> TranscriptionRequest:
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
        speaker_references=speaker_references(form.speaker_references),
    )


def speaker_references(raw: dict[str, str] | None) -> dict[str, bytes]:
    """Name -> clip bytes. Raises ValidationFailed: a value that is not base64."""
    field = "speaker_references"
    return {name: decode_base64(b64, f"{field}.{name}") for name, b64 in (raw or {}).items()}


def segment(wire: Segment, words: bool) -> TranscriptionSegment:
    timed = None
    if words and wire.words is not None:
        timed = [
            TranscriptionWord(word=w.word.strip(), start=round(w.start, 3), end=round(w.end, 3))
            for w in wire.words
        ]
    return TranscriptionSegment(
        text=wire.text.strip(),
        start=round(wire.start, 3),
        end=round(wire.end, 3),
        words=timed,
        speaker_id=wire.speaker,
    )


def transcription_response(
    prepared: PreparedTranscription,
    model: str,
    text: str,
    language: str | None,
    segments: list[TranscriptionSegment],
) -> TranscriptionResponse:
    seconds = math.ceil(prepared.duration)
    return TranscriptionResponse(
        model=model,
        text=text,
        language=language,
        segments=segments,
        usage=TranscriptionUsage(prompt_audio_seconds=seconds, seconds=seconds),
    )


def chat_request(body: WireChatRequest, owner_id: str) -> ChatCompletionRequest:
    """Raises Unsupported for what the engines cannot do: several choices, tools, content chunks
    other than text and audio."""
    if body.n is not None and body.n > 1:
        raise Unsupported("n: only one choice per request is supported.", field="n")
    if body.tools:
        raise Unsupported("tools: the chat engines here cannot call tools.", field="tools")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    return ChatCompletionRequest(
        owner_id=owner_id,
        messages=tuple(chat_message(m) for m in body.messages),
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(stop),
    )


def chat_message(wire: ChatMessageIn) -> InputMessage:
    content = wire.content
    if content is None:
        return InputMessage(wire.role, ())
    if isinstance(content, str):
        return InputMessage(wire.role, (content,))
    return InputMessage(wire.role, tuple(chat_part(p) for p in content))


def chat_part(wire: ChatContentPart) -> Part:
    if wire.type == "text":
        return wire.text or ""
    if wire.type == "input_audio" and wire.input_audio is not None:
        audio = wire.input_audio
        if isinstance(audio, str):
            return AudioInput(audio)
        return AudioInput(audio.data, audio.format)
    raise Unsupported(
        f"Content chunks of type '{wire.type}' are not supported: send text and input_audio.",
        field="messages",
    )


def file_object(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id,
        bytes=record.bytes,
        created_at=int(record.created_at.timestamp()),
        filename=record.filename,
        purpose=record.purpose,
        sample_type=record.purpose,
        mimetype=record.content_type,
        expires_at=int(record.expires_at.timestamp()) if record.expires_at else None,
    )


def content_disposition(filename: str) -> str:
    """An ``attachment`` header for any file name: an ASCII ``filename`` for old clients and the
    exact name as RFC 5987 ``filename*`` (UTF-8, percent-encoded)."""
    fallback = (
        "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename).strip()
        or "download"
    )
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


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
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed("page_token: not a token this server issued.", field="page_token")
    return offset
