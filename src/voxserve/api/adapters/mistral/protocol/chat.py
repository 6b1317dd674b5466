"""Mistral chat request wire models (the answers are ``api.chat_completions``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class InputAudioObject(BaseModel):
    """The object form of ``input_audio`` (OpenAI's shape, also in older Mistral docs)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    data: str
    """Base64 bytes, a ``data:`` URL or an ``http(s)`` URL."""
    format: str | None = None


class ChatContentPart(BaseModel):
    """A content chunk: ``{"type": "text", "text"}`` or ``{"type": "input_audio", ...}``."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    type: str
    text: str | None = None
    input_audio: str | InputAudioObject | None = None
    """Base64 bytes, a ``data:`` URL, an ``http(s)`` URL or a signed file URL of this server."""


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ChatContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` (Mistral shape: ``input_audio`` is a plain string)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "voxtral-mini-latest",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "type": "input_audio",
                                    "input_audio": "UklGRiQAAABXQVZFZm10IBAAAAABAAEA...",
                                },
                                {"type": "text", "text": "What is said in this recording?"},
                            ],
                        }
                    ],
                }
            ]
        },
    )

    model: str | None = None
    """``voxtral-small-latest`` etc. use the default chat engine; an engine name picks one."""
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int | None = Field(None, ge=1)
    tools: list[dict[str, object]] | None = None
    random_seed: int | None = None
    """Accepted; the engines here take no seed."""
