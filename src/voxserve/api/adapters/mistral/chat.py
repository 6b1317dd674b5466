"""Mistral's chat body to the core request: content chunks ``text`` and ``input_audio`` (a plain
string; the object form of older docs is taken too)."""

from __future__ import annotations

from voxserve.api.adapters.mistral.protocol import ChatCompletionRequest as WireChatRequest
from voxserve.api.adapters.mistral.protocol import ChatContentPart, ChatMessageIn
from voxserve.core.chat import AudioInput, ChatCompletionRequest, InputMessage, Part
from voxserve.errors import Unsupported


def to_core(body: WireChatRequest, owner_id: str) -> ChatCompletionRequest:
    """Raises Unsupported for what the engines cannot do: several choices, tools, content chunks
    other than text and audio."""
    if body.n is not None and body.n > 1:
        raise Unsupported("n: only one choice per request is supported.", field="n")
    if body.tools:
        raise Unsupported("tools: the chat engines here cannot call tools.", field="tools")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    return ChatCompletionRequest(
        owner_id=owner_id,
        messages=tuple(message(m) for m in body.messages),
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(stop),
    )


def message(wire: ChatMessageIn) -> InputMessage:
    content = wire.content
    if content is None:
        return InputMessage(wire.role, ())
    if isinstance(content, str):
        return InputMessage(wire.role, (content,))
    return InputMessage(wire.role, tuple(part(p) for p in content))


def part(wire: ChatContentPart) -> Part:
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
