"""``POST /v1/chat/completions``, shared by the Mistral and OpenAI shapes.

The two bodies differ in ``input_audio`` (Mistral: a string; OpenAI: ``{data, format}``) and in a
few OpenAI-only keys; a body showing either is OpenAI's and gets OpenAI's error envelope. The
answers are one format that both official SDKs parse: ``chat.completion`` JSON, or SSE
``data: {chat.completion.chunk}`` messages without ``event:`` lines, the last chunk carrying
``finish_reason`` and usage (with Mistral's integer ``prompt_audio_seconds``), then
``data: [DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from voxserve.api.adapters.mistral import chat as mistral_chat
from voxserve.api.adapters.mistral.protocol import ChatCompletionRequest as MistralChatRequest
from voxserve.api.adapters.openai import chat as openai_chat
from voxserve.api.adapters.openai.protocol import ChatCompletionRequest as OpenAIChatRequest
from voxserve.api.bodies import json_body, one_of_body, parse
from voxserve.api.deps import CurrentOwner, ServicesDep
from voxserve.api.errors import mistral_type
from voxserve.api.streaming import prime, sse, sse_response, with_error_event
from voxserve.core.chat import ChatCompletionRequest, ChatService, PreparedChat
from voxserve.core.ids import prefixed_id
from voxserve.engines.protocol import ChatDelta
from voxserve.errors import VoxError

router = APIRouter(tags=["chat"])

OPENAI_ONLY_KEYS = frozenset(
    {
        "max_completion_tokens",
        "stream_options",
        "modalities",
        "audio",
        "store",
        "seed",
        "user",
        "logit_bias",
        "verbosity",
        "web_search_options",
    }
)
"""Keys of OpenAI's chat body that Mistral's (SDK 3.7.0) does not have."""
DONE = b"data: [DONE]\n\n"


BODY_SCHEMA = one_of_body(MistralChatRequest, OpenAIChatRequest)


@router.post("/v1/chat/completions", openapi_extra=BODY_SCHEMA, response_model=None)
async def create_chat_completion(
    request: Request, owner: CurrentOwner, services: ServicesDep
) -> Response:
    """Answer a conversation whose messages may hold audio (``input_audio`` parts). Non-stream:
    ``chat.completion`` JSON; ``"stream": true``: SSE chunks ending with ``data: [DONE]``."""
    body = await json_body(request)
    core: ChatCompletionRequest
    if looks_openai(body):
        request.state.error_shape = "openai"
        openai_body = parse(OpenAIChatRequest, body)
        core, stream = openai_chat.to_core(openai_body, owner.id), openai_body.stream
    else:
        mistral_body = parse(MistralChatRequest, body)
        core, stream = mistral_chat.to_core(mistral_body, owner.id), mistral_body.stream
    prepared = await services.chat.prepare(core)
    model = core.model or prepared.engine.name
    if stream:
        deltas = await prime(services.chat.stream(prepared))
        return sse_response(with_error_event(chunk_events(prepared, model, deltas), error_event))
    return JSONResponse(await completion(services.chat, prepared, model))


def looks_openai(body: dict[str, Any]) -> bool:
    """OpenAI's body: an ``input_audio`` object, a ``developer`` message or an OpenAI-only key."""
    if OPENAI_ONLY_KEYS & body.keys():
        return True
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "developer":
            return True
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("input_audio"), dict):
                return True
    return False


async def completion(chat: ChatService, prepared: PreparedChat, model: str) -> dict[str, Any]:
    answer = await chat.complete(prepared)
    return {
        "id": prefixed_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": answer.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(prepared, answer.prompt_tokens, answer.completion_tokens),
    }


async def chunk_events(
    prepared: PreparedChat, model: str, deltas: AsyncIterator[ChatDelta]
) -> AsyncIterator[bytes]:
    head = {
        "id": prefixed_id("chatcmpl"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    delta: dict[str, Any] = {"role": "assistant", "content": ""}
    async for piece in deltas:
        delta["content"] += piece.text
        if piece.finish_reason is None:
            if delta["content"] or "role" in delta:
                yield sse({**head, "choices": [choice(delta, None)]})
            delta = {"content": ""}
            continue
        counts = usage(prepared, piece.prompt_tokens or 0, piece.completion_tokens or 0)
        yield sse({**head, "choices": [choice(delta, piece.finish_reason)], "usage": counts})
    yield DONE


def choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}


def usage(prepared: PreparedChat, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_audio_seconds": prepared.prompt_audio_seconds,
    }


def error_event(exc: VoxError) -> bytes:
    """OpenAI's SDK raises ``APIError`` on a chunk with ``error``; Mistral's fails to read it as a
    chunk and raises too. No ``[DONE]`` follows: the answer is incomplete."""
    error = {"message": exc.message, "type": mistral_type(exc.status), "code": exc.code}
    return sse({"object": "error", "error": error})
