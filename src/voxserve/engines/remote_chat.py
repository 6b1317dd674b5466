"""Chat through a remote OpenAI-compatible ``/chat/completions`` server (vLLM, llama.cpp server,
Ollama, OpenAI...), streamed as server-sent events."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from voxserve.engines.protocol import ChatCapabilities, ChatDelta, ChatMessage, ChatRequest
from voxserve.engines.remote_http import RemoteServer, error_text, without_none
from voxserve.errors import EngineFailure

_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
"""Role markers and separators the chat template adds around each message."""
_AUDIO_TOKENS_PER_SECOND = 12.5
"""Voxtral's audio encoder rate; other audio models are in the same range."""


class RemoteChatEngine:
    """A ``ChatEngine`` that forwards to a remote ``POST {base}/chat/completions``.

    With ``audio_native`` the remote model hears the audio itself: audio parts go up unchanged as
    OpenAI ``input_audio`` content parts. Without it (cascade mode) only the text is sent; the
    chat service has already put transcripts into the message content.
    """

    name = "remote-chat"
    version = "1"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        audio_native: bool = False,
        context_length: int = 32768,
        max_concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.audio_native = audio_native
        self.context_length = context_length
        self.max_concurrency = max_concurrency
        self._server = RemoteServer(base_url, api_key=api_key, timeout=timeout, transport=transport)

    def capabilities(self) -> ChatCapabilities:
        return ChatCapabilities(
            context_length=self.context_length,
            audio_input=self.audio_native,
            max_concurrency=self.max_concurrency,
            models=(self.model,) if self.model else (),
        )

    def load(self) -> None:
        """Nothing to load: the connection pool opens on the first request."""

    def unload(self) -> None:
        self._server.close()

    def count_tokens(self, request: ChatRequest) -> int:
        """A rough estimate: about four characters per token, plus audio at the encoder's rate.

        The remote server tokenizes for real and reports exact counts in the final delta; this
        estimate only lets the chat service refuse conversations that clearly cannot fit.
        """
        total = 3  # the assistant turn the template opens for the answer
        for message in request.messages:
            total += _TOKENS_PER_MESSAGE + math.ceil(len(message.content) / _CHARS_PER_TOKEN)
            if self.audio_native:
                seconds = sum(part.clip.duration for part in message.audio)
                total += math.ceil(seconds * _AUDIO_TOKENS_PER_SECOND)
        return total

    def complete(self, request: ChatRequest) -> Iterator[ChatDelta]:
        payload = without_none(
            model=self.model,
            messages=[self._message(message) for message in request.messages],
            stream=True,
            stream_options={"include_usage": True},
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
        )
        with self._server.stream("POST", "/chat/completions", json=payload) as response:
            yield from _deltas(_sse_data(response.iter_lines()))

    def _message(self, message: ChatMessage) -> dict[str, Any]:
        if not (self.audio_native and message.audio):
            return {"role": message.role, "content": message.content}
        parts: list[dict[str, Any]] = []
        if message.content:
            parts.append({"type": "text", "text": message.content})
        for audio in message.audio:
            data = base64.b64encode(audio.encoded).decode("ascii")
            parts.append(
                {"type": "input_audio", "input_audio": {"data": data, "format": audio.format}}
            )
        return {"role": message.role, "content": parts}


def _sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined, comments skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


@dataclass
class _Ending:
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    done: bool = False


def _deltas(events: Iterable[str]) -> Iterator[ChatDelta]:
    """Turn OpenAI chat-completion chunks into deltas, ending with one that carries the counts."""
    ending = _Ending()
    for event in events:
        if event.strip() == "[DONE]":
            ending.done = True
            break
        text = _read_chunk(event, ending)
        if text:
            yield ChatDelta(text=text)
    if not (ending.done or ending.finish_reason):
        raise EngineFailure("The remote chat server ended the stream before the answer was done.")
    yield ChatDelta(
        finish_reason=ending.finish_reason or "stop",
        prompt_tokens=ending.prompt_tokens,
        completion_tokens=ending.completion_tokens,
    )


def _read_chunk(event: str, ending: _Ending) -> str:
    """The content text of one chunk; its finish reason and usage go into ``ending``."""
    try:
        chunk = json.loads(event)
    except ValueError as exc:
        raise EngineFailure("The remote chat server sent an event that is not JSON.") from exc
    if not isinstance(chunk, dict):
        raise EngineFailure("The remote chat server sent an unexpected event.")
    if chunk.get("error"):
        # vLLM reports failures inside an already started stream this way.
        detail = error_text(chunk)
        raise EngineFailure(
            "The remote chat server failed while answering" + (f": {detail}" if detail else ".")
        )
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        ending.prompt_tokens = usage.get("prompt_tokens", ending.prompt_tokens)
        ending.completion_tokens = usage.get("completion_tokens", ending.completion_tokens)
    text = ""
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        content = (choice.get("delta") or {}).get("content")
        text += content if isinstance(content, str) else ""
        ending.finish_reason = choice.get("finish_reason") or ending.finish_reason
    return text
