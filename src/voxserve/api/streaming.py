"""Streaming helpers: prime the first chunk before the 200, SSE framing, error events, and a
streaming response that closes its body when it ends."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from voxserve.errors import VoxError

log = logging.getLogger(__name__)
T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClosingStreamingResponse(StreamingResponse):
    """A ``StreamingResponse`` that closes its body iterator when the response ends, however it
    ends. Starlette's does not when the client hangs up while it awaits the socket: the body's
    generators then stay suspended at a yield, and their cleanup (a spool closing, a stream's
    usage) waits for garbage collection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await aclose(self.body_iterator)


async def aclose(stream: object) -> None:
    """Close ``stream`` when it can be closed (an async generator); else nothing."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


@asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """``stream``, closed on leaving the block: also when the generator iterating it is itself
    closed at a yield (``async for`` alone leaves the inner stream to garbage collection)."""
    try:
        yield stream
    finally:
        await aclose(stream)


async def prime(stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """Pull the first item now, so failures before any output raise here and become real HTTP
    statuses; the returned iterator yields that item and then the rest."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        return _empty()
    return _chain(first, stream)


async def _chain(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    async with closing(rest):
        yield first
        async for item in rest:
            yield item


async def _empty() -> AsyncIterator[Any]:
    return
    yield


def sse(data: dict[str, Any], event: str | None = None) -> bytes:
    """One SSE message; ``event:`` line when given (Mistral's SDK requires it)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def with_error_event(
    events: AsyncIterator[bytes], render: Callable[[VoxError], bytes]
) -> AsyncIterator[bytes]:
    """After the 200 is out, a failure can only be told in-band: end with an error event."""
    async with closing(events):
        try:
            async for event in events:
                yield event
        except VoxError as exc:
            log.warning("stream ended by error: %s", exc.message)
            yield render(exc)
        except Exception:
            log.exception("stream failed")
            yield render(VoxError("Internal error while streaming."))


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return ClosingStreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def audio_bytes_logging_errors(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Raw audio cannot carry an error after it started: it just ends, and we log why."""
    async with closing(chunks):
        try:
            async for chunk in chunks:
                yield chunk
        except VoxError as exc:
            log.warning("audio stream ended early: %s", exc.message)
        except Exception:
            log.exception("audio stream failed")
