"""Mistral transcription wire models: the JSON answer and the four SSE events (each event's
``type`` is its ``event:`` name, which the SDK reads to pick the typed event)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class TranscriptionWord(BaseModel):
    """voxserve extension (the SDK keeps it as an extra key): a word's timing."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    word: str
    start: float
    """Seconds from the start of the audio."""
    end: float


class WithWords(BaseModel):
    """A segment's optional parts, left out of the JSON when absent."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    words: list[TranscriptionWord] | None = None
    """With ``timestamp_granularities`` ``word`` (voxserve extension)."""
    speaker_id: str | None = None
    """With ``diarize``: a ``speaker_references`` name, else ``speaker_1``, ``speaker_2``..."""

    @model_serializer(mode="wrap")
    def _omit_absent_words(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        for key in ("words", "speaker_id"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class TranscriptionSegment(WithWords):
    """A stretch of speech with its timing, inside the answer and the ``.done`` event."""

    text: str
    start: float
    """Seconds from the start of the audio."""
    end: float
    type: Literal["transcription_segment"] = "transcription_segment"


class TranscriptionUsage(BaseModel):
    """Transcription is counted in seconds of audio, rounded up."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    prompt_audio_seconds: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    type: Literal["duration"] = "duration"
    """OpenAI's usage keys too, so an OpenAI client reads the same answer."""
    seconds: int


class TranscriptionResponse(BaseModel):
    """The answer without ``stream`` (also OpenAI's ``json``, whose keys it has)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "model": "voxtral-mini-latest",
                    "text": "Hello world.",
                    "language": "en",
                    "segments": [
                        {
                            "text": "Hello world.",
                            "start": 0.0,
                            "end": 1.2,
                            "type": "transcription_segment",
                        }
                    ],
                    "usage": {
                        "prompt_audio_seconds": 2,
                        "prompt_tokens": 0,
                        "completion_tokens": 0,
                        "total_tokens": 0,
                        "type": "duration",
                        "seconds": 2,
                    },
                }
            ]
        },
    )

    model: str
    """The model asked for, else the engine that answered."""
    text: str
    language: str | None
    """The language given, else the one detected."""
    segments: list[TranscriptionSegment] = Field(default_factory=list)
    usage: TranscriptionUsage


class TranscriptionLanguageEvent(BaseModel):
    """SSE ``event: transcription.language``: the first event."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["transcription.language"] = "transcription.language"
    audio_language: str | None


class TranscriptionTextDelta(BaseModel):
    """SSE ``event: transcription.text.delta``: the next words (with their leading space)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: Literal["transcription.text.delta"] = "transcription.text.delta"
    text: str


class TranscriptionSegmentEvent(WithWords):
    """SSE ``event: transcription.segment``: a finished segment."""

    type: Literal["transcription.segment"] = "transcription.segment"
    text: str
    start: float
    end: float


class TranscriptionDone(TranscriptionResponse):
    """SSE ``event: transcription.done``: the whole answer, last."""

    type: Literal["transcription.done"] = "transcription.done"
