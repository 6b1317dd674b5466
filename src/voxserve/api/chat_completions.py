"""The chat-completion format that both official SDKs read (Mistral's and OpenAI's), shared by
both shapes of ``POST /v1/chat/completions`` (not an adapter: the bodies differ, the answers do
not).

Non-stream: a ``chat.completion`` object. Stream: SSE ``data: {chat.completion.chunk}`` messages
without ``event:`` lines, the last chunk carrying ``finish_reason`` and usage (with Mistral's
integer ``prompt_audio_seconds``), then ``data: [DONE]``. A failure after the first chunk ends
the stream with an ``error`` chunk and no ``[DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from voxserve.api.bodies import inline_schema
from voxserve.api.streaming import closing, prime, sse, sse_response, with_error_event
from voxserve.core.chat import ChatCompletionRequest, ChatService, PreparedChat
from voxserve.core.ids import prefixed_id
from voxserve.core.types import ChatDelta
from voxserve.errors import VoxError

DONE = b"data: [DONE]\n\n"


class ChatUsage(BaseModel):
    """Tokens of the request and answer."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_audio_seconds: int
    """Mistral: whole seconds of audio in the prompt."""


class AssistantMessage(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    """``stop``, or ``length`` when ``max_tokens`` cut the answer."""
    logprobs: None = None


class ChatCompletion(BaseModel):
    """``POST /v1/chat/completions`` without ``stream``."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "chatcmpl-9b1d",
                    "object": "chat.completion",
                    "created": 1767225600,
                    "model": "voxtral-mini-latest",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "The speaker says hello."},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 42,
                        "completion_tokens": 6,
                        "total_tokens": 48,
                        "prompt_audio_seconds": 2,
                    },
                }
            ]
        },
    )

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    """Unix seconds."""
    model: str
    """The model asked for, else the engine that answered."""
    choices: list[Choice]
    usage: ChatUsage


class Delta(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    role: Literal["assistant"] | None = None
    """Only in the first chunk."""
    content: str = ""


class ChunkChoice(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    """Set in the last chunk only."""
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One SSE ``data:`` message of a streamed answer."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None
    """In the last chunk only."""


class ChatErrorDetail(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    message: str
    type: str
    code: str


class ChatStreamError(BaseModel):
    """The chunk that ends a stream which failed after its first chunk (no ``[DONE]`` follows).
    OpenAI's SDK raises ``APIError`` on it; Mistral's fails to read it as a chunk and raises."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    object: Literal["error"] = "error"
    error: ChatErrorDetail


RESPONSE_CONTENT: dict[str, Any] = {
    "application/json": {"schema": inline_schema(ChatCompletion)},
    "text/event-stream": {
        "schema": {"oneOf": [inline_schema(ChatCompletionChunk), inline_schema(ChatStreamError)]}
    },
}
"""The answers' OpenAPI content (JSON, or SSE chunks)."""


async def respond(chat: ChatService, request: ChatCompletionRequest, *, stream: bool) -> Response:
    """Prepare (every check before the 200), then answer as JSON or as a primed SSE stream."""
    prepared = await chat.prepare(request)
    model = request.model or prepared.engine.name
    if stream:
        deltas = await prime(chat.stream(prepared))
        return sse_response(with_error_event(chunk_events(prepared, model, deltas), error_event))
    answer = await chat.complete(prepared)
    body = ChatCompletion(
        id=prefixed_id("chatcmpl"),
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=answer.text), finish_reason=answer.finish_reason
            )
        ],
        usage=usage(prepared, answer.prompt_tokens, answer.completion_tokens),
    )
    return JSONResponse(body.model_dump())


async def chunk_events(
    prepared: PreparedChat, model: str, deltas: AsyncIterator[ChatDelta]
) -> AsyncIterator[bytes]:
    """Chunks with text (the first one with the role, even empty), the last one with usage."""
    chunk_id, created = prefixed_id("chatcmpl"), int(time.time())

    def chunk(delta: Delta, finish: str | None, counts: ChatUsage | None = None) -> bytes:
        body = ChatCompletionChunk(
            id=chunk_id,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
            usage=counts,
        )
        data = body.model_dump(exclude={"usage"} if counts is None else set())
        if delta.role is None:  # the role is said once, in the first chunk
            del data["choices"][0]["delta"]["role"]
        return sse(data)

    delta = Delta(role="assistant")
    async with closing(deltas):
        async for piece in deltas:
            delta.content += piece.text
            if piece.finish_reason is None:
                if delta.content or delta.role:
                    yield chunk(delta, None)
                delta = Delta()
                continue
            counts = usage(prepared, piece.prompt_tokens or 0, piece.completion_tokens or 0)
            yield chunk(delta, piece.finish_reason, counts)
    yield DONE


def usage(prepared: PreparedChat, prompt_tokens: int, completion_tokens: int) -> ChatUsage:
    return ChatUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        prompt_audio_seconds=prepared.prompt_audio_seconds,
    )


def error_type(status: int) -> str:
    """The ``type`` both SDKs' error bodies carry, by status."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_event(exc: VoxError) -> bytes:
    detail = ChatErrorDetail(message=exc.message, type=error_type(exc.status), code=exc.code)
    return sse(ChatStreamError(error=detail).model_dump())
