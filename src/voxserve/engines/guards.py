"""Guards around engine work: engine exceptions become ``EngineFailure``, and an async iterator
that holds an engine slot gives it back however it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import TypeVar

from voxserve.errors import EngineFailure, VoxError

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextmanager
def engine_errors(name: str, action: str) -> Iterator[None]:
    """Let VoxErrors through; turn anything else an engine raises into ``EngineFailure`` (logged
    with its traceback here, never sent to the client)."""
    try:
        yield
    except VoxError:
        raise
    except Exception as exc:
        log.exception("engine %s failed during %s", name, action)
        raise EngineFailure(f"The {name} engine failed during {action}.") from exc


async def guarded(
    name: str, action: str, stream: AsyncGenerator[T, None]
) -> AsyncGenerator[T, None]:
    async with aclosing(stream):
        with engine_errors(name, action):
            async for item in stream:
                yield item


class SlotStream(AsyncIterator[T]):
    """An async iterator holding an engine slot, given back once the iterator is exhausted,
    fails or is closed (``aclose()``, or ``contextlib.aclosing``).

    A plain async generator would not do: one that was never started runs no cleanup on
    ``aclose()``, and the engine slot it holds would never come back.
    """

    def __init__(self, stream: AsyncGenerator[T, None], on_close: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stream = stream
        self._on_close: Callable[[], None] | None = on_close

    async def __anext__(self) -> T:
        try:
            return await self._stream.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is None:
            return
        try:
            await self._stream.aclose()
        finally:
            on_close()

    def __del__(self) -> None:
        # Dropped without being closed: still give the slot back, on the loop's thread.
        if self._on_close is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_close)
