"""Mistral speech wire models: the request, ``{"audio_data"}`` and the SSE events."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SpeechFormat = Literal["pcm", "wav", "mp3", "flac", "opus"]


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech`` (Mistral shape: ``voice_id``, ``{"audio_data"}`` or SSE)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "voxtral-mini-tts-latest",
                    "input": "Hello from voxserve.",
                    "voice_id": "en_paul_neutral",
                    "response_format": "mp3",
                }
            ]
        },
    )

    input: str
    """Text to speak; inline ``[emotion=...]`` and ``[pace=...]`` tags are honoured, not spoken."""
    model: str | None = None
    """``voxtral-mini-tts-latest`` etc. use the default engine; an engine name picks one."""
    voice_id: str | None = None
    """A preset id, a custom voice id, or a Mistral preset id (mapped to a local voice)."""
    ref_audio: str | None = None
    """Base64 reference clip for one-off cloning."""
    response_format: SpeechFormat = "mp3"
    """``pcm``: raw float32 little-endian mono at 24 kHz (what Mistral serves); ``wav``: 16-bit
    PCM mono at the engine's rate; ``mp3``, ``flac``, ``opus``: mono at the engine's rate
    (opus rounded up to a rate Opus takes: 8, 12, 16, 24 or 48 kHz)."""
    stream: bool = False
    speed: float = Field(1.0, ge=0.25, le=4.0)
    """voxserve extension: 0.25 to 4.0."""
    language: str | None = None
    """voxserve extension: language hint for multilingual engines."""
    conversation_history: list[dict[str, object]] | None = None


class SpeechResponse(BaseModel):
    """The answer without ``stream``."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {"audio_data": "SUQzBAAAAAAAI1RTU0UAAAAPAAADTGF2ZjYwLjE2LjEwMAAAAAAAAAAAAAAA..."}
            ]
        },
    )

    audio_data: str
    """The whole file, base64."""


class SpeechUsage(BaseModel):
    """Speech is counted in characters (tags excluded): one credit each."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    prompt_tokens: int
    """The characters, as Mistral counts them."""
    completion_tokens: int = 0
    total_tokens: int
    prompt_characters: int
    """voxserve extension: the characters charged."""


class SpeechAudioDelta(BaseModel):
    """SSE ``event: speech.audio.delta``: the next piece of the file."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio_data: str
    """Base64; the pieces concatenate into one file of ``response_format``."""


class SpeechAudioDone(BaseModel):
    """SSE ``event: speech.audio.done``: the last event of a stream that succeeded."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage
