"""OpenAI wire models <-> core types: speech, transcription, translation and chat bodies."""

from __future__ import annotations

import math

from voxserve.api.adapters.openai.protocol import (
    ChatCompletionRequest as WireChatRequest,
)
from voxserve.api.adapters.openai.protocol import (
    ChatContentPart,
    ChatMessageIn,
    DiarizedSegment,
    DiarizedTranscription,
    DurationUsage,
    SpeechTokens,
    TimedSegment,
    TimedWord,
    Transcription,
    VerboseTranscription,
)
from voxserve.api.adapters.openai.protocol import SpeechRequest as WireSpeechRequest
from voxserve.api.forms import TranscriptionForm
from voxserve.audio.types import AudioFormat
from voxserve.core.b64 import decode_base64
from voxserve.core.chat import AudioInput, ChatCompletionRequest, InputMessage, Part
from voxserve.core.diarization import OPENAI_LIMITS
from voxserve.core.speech import PreparedSpeech, SpeechRequest
from voxserve.core.text import read_instructions
from voxserve.core.transcription import AudioSource, Transcript, TranscriptionRequest
from voxserve.errors import InvalidRequest, Unsupported, ValidationFailed

SPEECH_FORMATS: dict[str, AudioFormat] = {
    "mp3": "mp3",
    "opus": "opus",
    "aac": "aac",
    "flac": "flac",
    "wav": "wav",
    "pcm": "pcm16",
}
PCM_RATE = 24000
"""OpenAI's ``pcm`` is 24 kHz whatever the engine's rate."""
TEXT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
DIARIZED = "diarized_json"


def speech_request(body: WireSpeechRequest, owner_id: str) -> SpeechRequest:
    """The emotion and pace that ``instructions`` name pick the voice's sample and the speed."""
    voice = body.voice if isinstance(body.voice, str) else body.voice.id
    style = read_instructions(body.instructions)
    return SpeechRequest(
        owner_id=owner_id,
        text=body.input,
        model=body.model,
        voice_id=voice,
        speed=min(max(body.speed * (style.pace or 1.0), 0.25), 4.0),
        emotion=style.emotion,
    )


def speech_usage(prepared: PreparedSpeech) -> SpeechTokens:
    return SpeechTokens(input_tokens=prepared.characters, total_tokens=prepared.characters)


def response_format(form: TranscriptionForm) -> str:
    """Raises ValidationFailed: not one of json, text, srt, vtt, verbose_json."""
    fmt = form.response_format or "json"
    if fmt not in TEXT_FORMATS:
        raise ValidationFailed(
            f"response_format: '{fmt}' is not one of {', '.join(TEXT_FORMATS)}.",
            field="response_format",
        )
    return fmt


def transcription_request(
    form: TranscriptionForm, owner_id: str, *, translate: bool = False
) -> TranscriptionRequest:
    """``diarized_json`` (or known speakers) diarizes; unnamed speakers are ``A``, ``B``...

    Raises:
        InvalidRequest: known speaker names and references that do not pair up.
        ValidationFailed: a reference that is not a base64 data URL.
    """
    references = known_speakers(form)
    return TranscriptionRequest(
        owner_id=owner_id,
        source=AudioSource(data=form.file, url=form.file_url, file_id=form.file_id),
        model=form.model,
        language=None if translate else form.language,
        temperature=form.temperature,
        word_timestamps="word" in form.timestamp_granularities,
        hotwords=form.context_bias,
        prompt=form.prompt,
        diarize=form.diarize or form.response_format == DIARIZED or bool(references),
        task="translate" if translate else "transcribe",
        speaker_references=references,
        reference_limits=OPENAI_LIMITS,
        anonymous_speakers="lettered",
    )


def known_speakers(form: TranscriptionForm) -> dict[str, bytes]:
    names, clips = form.known_speaker_names, form.known_speaker_references
    if len(names) != len(clips):
        raise InvalidRequest(
            f"known_speaker_names has {len(names)} names but known_speaker_references has "
            f"{len(clips)} clips: give one name per clip.",
            field="known_speaker_names",
        )
    field = "known_speaker_references"
    return {
        n: decode_base64(c, f"{field}[{i}]")
        for i, (n, c) in enumerate(zip(names, clips, strict=True))
    }


def diarized(transcript: Transcript) -> DiarizedTranscription:
    segments = [
        DiarizedSegment(
            id=f"seg_{i}",
            start=round(s.start, 3),
            end=round(s.end, 3),
            text=s.text.strip(),
            speaker=s.speaker or "A",
        )
        for i, s in enumerate(transcript.segments)
    ]
    return DiarizedTranscription(
        duration=round(transcript.duration, 3),
        text=transcript.text,
        segments=segments,
        usage=usage(transcript.duration),
    )


def usage(duration: float) -> DurationUsage:
    return DurationUsage(seconds=math.ceil(duration))


def transcription(transcript: Transcript) -> Transcription:
    return Transcription(text=transcript.text, usage=usage(transcript.duration))


def verbose(
    transcript: Transcript, words: bool, *, translate: bool = False
) -> VerboseTranscription:
    segments = [
        TimedSegment(id=i, start=round(s.start, 3), end=round(s.end, 3), text=s.text.strip())
        for i, s in enumerate(transcript.segments)
    ]
    timed = [
        TimedWord(word=w.word.strip(), start=round(w.start, 3), end=round(w.end, 3))
        for s in transcript.segments
        for w in (s.words or ())
    ]
    return VerboseTranscription(
        task="translate" if translate else "transcribe",
        language="english" if translate else transcript.language,
        duration=round(transcript.duration, 3),
        text=transcript.text,
        segments=segments,
        words=timed if words else None,
        usage=None if translate else usage(transcript.duration),
    )


def chat_request(body: WireChatRequest, owner_id: str) -> ChatCompletionRequest:
    """Raises Unsupported for what the engines cannot do: several choices, audio output, tools,
    content parts other than text and audio."""
    if body.n is not None and body.n > 1:
        raise Unsupported("n: only one choice per request is supported.", field="n")
    if body.modalities and any(m != "text" for m in body.modalities):
        raise Unsupported(
            "modalities: answers are text only; speak them with /v1/audio/speech.",
            field="modalities",
        )
    if body.tools:
        raise Unsupported("tools: the chat engines here cannot call tools.", field="tools")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    return ChatCompletionRequest(
        owner_id=owner_id,
        messages=tuple(chat_message(m) for m in body.messages),
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=tuple(stop),
    )


def chat_message(wire: ChatMessageIn) -> InputMessage:
    """``developer`` messages are system messages."""
    role = "system" if wire.role == "developer" else wire.role
    content = wire.content
    if content is None:
        return InputMessage(role, ())
    if isinstance(content, str):
        return InputMessage(role, (content,))
    return InputMessage(role, tuple(chat_part(p) for p in content))


def chat_part(wire: ChatContentPart) -> Part:
    if wire.type == "text":
        return wire.text or ""
    if wire.type == "input_audio" and wire.input_audio is not None:
        return AudioInput(wire.input_audio.data, wire.input_audio.format)
    raise Unsupported(
        f"Content parts of type '{wire.type}' are not supported: send text and input_audio.",
        field="messages",
    )
