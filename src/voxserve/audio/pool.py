"""The decode pool: untrusted audio is decoded on threads of its own, with admission control.

Decoding is the one blocking work whose cost a client chooses (a 7 MB FLAC can hold ten hours
of silence), so it must never take the worker threads that engines, storage and encoding share:
the pool runs at most ``workers`` decodes at once on its own threads, lets at most ``queue``
more wait, and refuses the rest at once with ``Overloaded`` (429 with Retry-After). A later
step of work already admitted (the next window of a long transcription) waits but is never
refused, so accepted work is not failed for load midway.

Invariant: at most ``workers + queue`` new decodes are admitted at once (later steps of admitted
work come on top, waiting for a thread); ``saturated`` is what the readiness endpoint reports.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import CapacityLimiter

from voxserve.errors import Overloaded
from voxserve.offload import iterate_in_thread, run_in_limited_thread

T = TypeVar("T")


@dataclass(frozen=True)
class PoolState:
    """What the pool does now (for ``/ready``)."""

    active: int
    """Decodes running."""
    waiting: int
    """Decodes queued for a thread."""
    limit: int
    """Decodes run at once."""
    queue: int
    """How many may wait before new ones are refused."""
    saturated: bool
    """New decodes are refused (429) now."""


class DecodePool:
    """Bounded threads for decoding audio, refusing new work when full."""

    def __init__(self, workers: int, queue: int, *, retry_after: int = 2) -> None:
        self._limiter = CapacityLimiter(workers)
        self._workers = workers
        self._queue = queue
        self._retry_after = retry_after
        self._admitted = 0

    async def run(self, fn: Callable[..., T], *args: Any, admitted: bool = False) -> T:
        """``fn(*args)`` on a pool thread.

        Raises:
            Overloaded: the pool and its queue are full (not when ``admitted``).
        """
        with self._admission(admitted):
            return await run_in_limited_thread(self._limiter, fn, *args)

    async def iterate(self, make: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
        """Pull ``make()``'s items on pool threads; the first pull is admitted like ``run``,
        later pulls only wait their turn (see the module docstring).

        Raises:
            Overloaded: on the first pull, when the pool is full.
        """
        with self._admission(False):
            items = iterate_in_thread(make, limiter=self._limiter)
            try:
                first = await anext(items, _END)
            except BaseException:
                await items.aclose()
                raise
        if first is _END:
            return
        try:
            yield first
            async for item in items:
                yield item
        finally:
            await items.aclose()

    def state(self) -> PoolState:
        statistics = self._limiter.statistics()
        return PoolState(
            active=statistics.borrowed_tokens,
            waiting=statistics.tasks_waiting,
            limit=self._workers,
            queue=self._queue,
            saturated=self._full(),
        )

    def _full(self) -> bool:
        return self._admitted >= self._workers + self._queue

    @contextmanager
    def _admission(self, admitted: bool) -> Iterator[None]:
        if not admitted and self._full():
            raise Overloaded(
                "The server is busy decoding audio; try again shortly.",
                retry_after=self._retry_after,
            )
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1


_END: Any = object()
