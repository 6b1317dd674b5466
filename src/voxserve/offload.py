"""The one way voxserve runs blocking work off the event loop: engines, decoding, encoding, files.

Every blocking call (an engine's inference, decoding or encoding audio, reading a blob) runs in a
worker thread, so the loop keeps serving health checks and other requests meanwhile. A leaf
module like ``errors``: engines, storage, core and api may all import it.

A thread cannot be interrupted: when the awaiting task is cancelled (a client went away, a
timeout fired), we still wait for the thread's current call to return
before the cancellation propagates. Otherwise the engine would still be working while the caller
believes it free, and the manager's concurrency limit would be a lie; a half-written file would
be taken for a whole one.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, TypeVar, cast

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")

_DONE: Any = object()
"""Returned by ``_pull`` when the iterator is exhausted (``StopIteration`` cannot cross an
``await``)."""


async def run_in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker thread and return its result.

    Raises:
        Whatever ``fn`` raises. ``asyncio.CancelledError`` when the caller is cancelled, but only
        once ``fn`` has returned.
    """
    task = _start(functools.partial(fn, *args, **kwargs))
    cancelled = await _settle(task)
    if cancelled is not None:
        raise cancelled
    return task.result()


async def run_in_limited_thread(
    limiter: CapacityLimiter, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``run_in_thread`` on threads of their own: at most ``limiter``'s tokens at once, so work
    behind it (decoding) never takes the threads every other request needs."""
    task = _start(functools.partial(fn, *args, **kwargs), limiter)
    cancelled = await _settle(task)
    if cancelled is not None:
        raise cancelled
    return task.result()


async def iterate_in_thread(
    make: Callable[[], Iterator[T]], *, limiter: CapacityLimiter | None = None
) -> AsyncGenerator[T, None]:
    """Create an iterator with ``make()`` and pull each item from it in a worker thread (one
    of ``limiter``'s when given).

    When the consumer stops early (``aclose()``, cancellation, an error), the iterator is closed in
    a worker thread, so a generator-based engine runs its cleanup and stops working.
    """
    task = _start(make, limiter)
    cancelled = await _settle(task)
    if cancelled is not None:
        if not task.cancelled() and task.exception() is None:
            await _close(task.result())
        raise cancelled
    iterator = task.result()
    try:
        while True:
            item = await _run(limiter, _pull, iterator)
            if item is _DONE:
                return
            yield cast(T, item)
    finally:
        await _close(iterator)


async def _run(limiter: CapacityLimiter | None, fn: Callable[..., T], *args: Any) -> T:
    if limiter is None:
        return await run_in_thread(fn, *args)
    return await run_in_limited_thread(limiter, fn, *args)


def _start(fn: Callable[[], T], limiter: CapacityLimiter | None = None) -> asyncio.Task[T]:
    # A task of its own, so that cancelling the caller never abandons the thread.
    return asyncio.ensure_future(anyio.to_thread.run_sync(fn, limiter=limiter))


async def _settle(task: asyncio.Task[T]) -> asyncio.CancelledError | None:
    """Wait until ``task`` is done, even through cancellations of the caller; return the last
    cancellation that arrived meanwhile (the caller re-raises it), or None."""
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = exc
    if task.cancelled():
        # The loop itself is shutting down and cancelled the thread task.
        return cancelled or asyncio.CancelledError()
    return cancelled


def _pull(iterator: Iterator[T]) -> T:
    return next(iterator, _DONE)


async def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        await run_in_thread(close)
