"""OpenAI wire models: speech, transcription and translation answers and events, chat requests
(the chat answers are ``api.chat_completions``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OpenAIFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class VoiceRef(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech`` (OpenAI shape: a body with ``voice``; raw audio or SSE)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "gpt-4o-mini-tts",
                    "input": "Hello from voxserve.",
                    "voice": "alloy",
                    "response_format": "wav",
                }
            ]
        },
    )

    model: str | None = None
    input: str
    voice: str | VoiceRef
    """An OpenAI voice name (``alloy``...), a local preset id or a custom voice id."""
    instructions: str | None = None
    """Free-text style (``gpt-4o-mini-tts``): the emotion and pace it names are used (an emotion
    picks the voice's sample for it, a pace sets the speed); the rest has no effect."""
    response_format: OpenAIFormat = "mp3"
    """``pcm``: raw 16-bit signed little-endian mono at 24 kHz (OpenAI's); ``wav``: 16-bit PCM
    mono at the engine's rate; ``mp3``, ``flac``, ``aac``, ``opus``: mono at the engine's rate
    (opus rounded up to a rate Opus takes: 8, 12, 16, 24 or 48 kHz)."""
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


class InputAudio(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    data: str
    """Base64 bytes (voxserve also takes a ``data:`` URL or an ``http(s)`` URL)."""
    format: str | None = None
    """``wav``, ``mp3``...; the bytes themselves are trusted over this hint."""


class ChatContentPart(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    type: str
    text: str | None = None
    input_audio: InputAudio | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    """``developer`` is read as ``system``."""
    content: str | list[ChatContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` (OpenAI shape: ``input_audio`` is ``{data, format}``)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "gpt-4o-audio-preview",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": "Summarise this recording."},
                                {
                                    "type": "input_audio",
                                    "input_audio": {
                                        "data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEA...",
                                        "format": "wav",
                                    },
                                },
                            ],
                        }
                    ],
                }
            ]
        },
    )

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    """Wins over the deprecated ``max_tokens``."""
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    """The last chunk always carries usage; ``include_usage`` changes nothing."""
    n: int | None = Field(None, ge=1)
    modalities: list[str] | None = None
    """Only ``text`` output: audio answers are refused."""
    tools: list[dict[str, object]] | None = None
    seed: int | None = None
    """Accepted; the engines here take no seed."""


class SpeechAudioDelta(BaseModel):
    """SSE (``stream_format: sse``): the next piece of audio."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str
    """Base64; the pieces concatenate into one file of ``response_format``."""


class SpeechTokens(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    input_tokens: int
    """The characters spoken (tags excluded)."""
    output_tokens: int = 0
    total_tokens: int


class SpeechAudioDone(BaseModel):
    """SSE: the last event of a stream that succeeded."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechTokens


class StreamErrorDetail(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    message: str
    code: str
    """The error's code (``engine_failure``...)."""


class StreamError(BaseModel):
    """SSE: ends a stream that failed after its first event."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["error"] = "error"
    error: StreamErrorDetail


class DurationUsage(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["duration"] = "duration"
    seconds: int
    """Seconds of audio, rounded up."""


class Transcription(BaseModel):
    """``response_format: json``."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [{"text": "Hello world.", "usage": {"type": "duration", "seconds": 2}}]
        },
    )

    text: str
    usage: DurationUsage


class TimedWord(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    word: str
    start: float
    end: float


class TimedSegment(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: int
    start: float
    end: float
    text: str


class VerboseTranscription(BaseModel):
    """``response_format: verbose_json``: the text with its segments (and words with
    ``timestamp_granularities[]=word``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    task: Literal["transcribe", "translate"] = "transcribe"
    language: str | None
    duration: float
    """Seconds of audio."""
    text: str
    segments: list[TimedSegment]
    words: list[TimedWord] | None = None
    usage: DurationUsage | None = None
    """Transcriptions only; translations carry none (as OpenAI's)."""


class DiarizedSegment(BaseModel):
    """A stretch of one speaker's speech (``diarized_json``), also the streamed
    ``transcript.text.segment`` event."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    """``seg_0``, ``seg_1``... in time order."""
    start: float
    end: float
    text: str
    speaker: str
    """A ``known_speaker_names`` name, else ``A``, ``B``... in order of first appearance."""


class DiarizedTranscription(BaseModel):
    """``response_format: diarized_json`` (``gpt-4o-transcribe-diarize``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    task: Literal["transcribe"] = "transcribe"
    duration: float
    """Seconds of audio."""
    text: str
    segments: list[DiarizedSegment]
    usage: DurationUsage


class Translation(BaseModel):
    """``/v1/audio/translations`` with ``response_format: json``: English text."""

    model_config = ConfigDict(
        use_attribute_docstrings=True, json_schema_extra={"examples": [{"text": "Hello world."}]}
    )

    text: str


class TranscriptTextDelta(BaseModel):
    """SSE (``stream: true``): the next words."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    segment_id: str | None = Field(None, exclude_if=lambda v: v is None)
    """With ``diarized_json``: the segment these words belong to."""


class TranscriptTextDone(BaseModel):
    """SSE: the whole text, last."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    message: str
    type: str
    """``invalid_request_error``, ``authentication_error``, ``rate_limit_error`` or
    ``server_error``."""
    param: str | None
    """The field at fault, when one is."""
    code: str
    """voxserve's error code (``validation_failed``, ``not_found``, ``overloaded``...)."""


class ErrorResponse(BaseModel):
    """Every OpenAI-shape error."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "message": "Model 'no-such-model' not found.",
                        "type": "invalid_request_error",
                        "param": "model",
                        "code": "invalid_request",
                    }
                }
            ]
        },
    )

    error: ErrorDetail


class TranslationFormFields(BaseModel):
    """The form of ``POST /v1/audio/translations`` (multipart)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    file: bytes = Field(json_schema_extra={"format": "binary"})
    """The audio, in any language (any container PyAV decodes)."""
    model: str | None = Field(None, examples=["whisper-1"])
    """A hosted name (``whisper-1``) or an engine name that can translate (faster-whisper)."""
    prompt: str | None = None
    """English text that guides the style of the translation."""
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = "json"
    temperature: float | None = None
