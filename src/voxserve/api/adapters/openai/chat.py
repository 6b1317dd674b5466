"""OpenAI's chat body to the core request: content parts ``text`` and ``input_audio``
(``{data, format}``); ``developer`` messages are system messages."""

from __future__ import annotations

from voxserve.api.adapters.openai.protocol import ChatCompletionRequest as WireChatRequest
from voxserve.api.adapters.openai.protocol import ChatContentPart, ChatMessageIn
from voxserve.core.chat import AudioInput, ChatCompletionRequest, InputMessage, Part
from voxserve.errors import Unsupported


def to_core(body: WireChatRequest, owner_id: str) -> ChatCompletionRequest:
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
        messages=tuple(message(m) for m in body.messages),
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=tuple(stop),
    )


def message(wire: ChatMessageIn) -> InputMessage:
    role = "system" if wire.role == "developer" else wire.role
    content = wire.content
    if content is None:
        return InputMessage(role, ())
    if isinstance(content, str):
        return InputMessage(role, (content,))
    return InputMessage(role, tuple(part(p) for p in content))


def part(wire: ChatContentPart) -> Part:
    if wire.type == "text":
        return wire.text or ""
    if wire.type == "input_audio" and wire.input_audio is not None:
        return AudioInput(wire.input_audio.data, wire.input_audio.format)
    raise Unsupported(
        f"Content parts of type '{wire.type}' are not supported: send text and input_audio.",
        field="messages",
    )
