"""One engine's bookkeeping for the manager: load state, concurrency slots, FIFO waiters.

Slots are handed over, not freed and re-taken: a releasing holder gives its slot straight to the
oldest waiter, so a newcomer can never overtake the queue. Waiters for a request's first piece go
before waiters for later pieces of requests already under way (``admitted``): a new request waits
for at most the pieces now running, never for the rest of a long request, so its first audio
comes early under load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Generic, TypeVar

from voxserve.engines.handles import EngineHandle, EngineKind
from voxserve.engines.protocol import ChatEngine, STTEngine, TTSEngine
from voxserve.errors import Overloaded
from voxserve.offload import run_in_thread

E = TypeVar("E", TTSEngine, STTEngine, ChatEngine)
log = logging.getLogger(__name__)


class EngineSlots(Generic[E]):
    """One engine with its handle, load state, concurrency slots and FIFO waiters.

    ``refresh`` takes a new handle (``capabilities()`` may block: call it in a worker thread).
    """

    def __init__(self, engine: E, handle: EngineHandle[Any], limit: int, max_queue: int) -> None:
        self.engine: E = engine
        self.kind: EngineKind = handle.kind
        self.handle = handle
        """The engine as core sees it; replaced (never mutated) when its capabilities change."""
        self.limit = limit
        self.max_queue = max_queue
        self.active = 0
        """Slots held (work running or about to run)."""
        self.users = 0
        """Operations needing the engine loaded: slot holders plus slot-less calls."""
        self.waiters: deque[asyncio.Future[None]] = deque()
        """New requests, FIFO; bounded by ``max_queue``."""
        self.continuing: deque[asyncio.Future[None]] = deque()
        """Later pieces of admitted requests, FIFO; served after ``waiters``."""
        self.loaded = False
        self.last_used = time.monotonic()
        self._load_lock = asyncio.Lock()
        self._loading: asyncio.Task[None] | None = None

    async def acquire(self, retry_after: int, *, admitted: bool = False) -> None:
        """Take a slot, waiting in FIFO order; ``Overloaded`` at once when the queue is full,
        unless the caller was ``admitted`` already (the next piece of a running request)."""
        if not self.busy():
            self.active += 1
            return
        if len(self.waiters) >= self.max_queue and not admitted:
            raise Overloaded(
                f"The {self.engine.name} engine is busy; try again shortly.",
                retry_after=retry_after,
            )
        waiter = asyncio.get_running_loop().create_future()
        queue = self.continuing if admitted else self.waiters
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter in queue:
                queue.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            raise

    def busy(self) -> bool:
        """Whether a slot asked for now would wait: all taken, or others already queue."""
        return self.active >= self.limit or bool(self.waiters) or bool(self.continuing)

    def release(self) -> None:
        """Hand the slot to the oldest waiter, or free it."""
        self.last_used = time.monotonic()
        for queue in (self.waiters, self.continuing):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self.active -= 1

    async def ensure_loaded(self) -> None:
        """Load the engine once; concurrent first uses wait for the same load."""
        if self.loaded:
            return
        async with self._load_lock:
            if self.loaded:
                return
            if self._loading is None:
                # A task of its own: a cancelled first caller must not leave a half-done load
                # that the next caller starts again.
                self._loading = asyncio.ensure_future(run_in_thread(self._load_and_refresh))
            try:
                await asyncio.shield(self._loading)
            finally:
                if self._loading.done():
                    self._loading = None
            self.loaded = True

    def refresh(self) -> None:
        """Take a new handle if the capabilities changed. Blocking: call it in a worker thread.

        Never raises: work that succeeded must not fail for its bookkeeping; the old handle
        stays (logged)."""
        try:
            fresh = snapshot(self.engine, self.kind)
        except Exception:
            log.exception(
                "engine %s: capabilities unavailable; keeping the last ones", self.handle.name
            )
            return
        if fresh != self.handle:
            self.handle = fresh  # one assignment: readers on the loop see the old or the new

    def _load_and_refresh(self) -> None:
        self.engine.load()
        self.refresh()

    async def unload(self) -> None:
        async with self._load_lock:
            if not self.loaded:
                return
            self.loaded = False
            await run_in_thread(self.engine.unload)

    def idle_for(self, now: float) -> float | None:
        """Seconds since last use when the engine could be unloaded now, else None."""
        if not self.loaded or self.users or self.active or self.waiters or self.continuing:
            return None
        return now - self.last_used

    def status(self) -> dict[str, Any]:
        return {
            "name": self.engine.name,
            "kind": self.kind,
            "loaded": self.loaded,
            "active": self.active,
            "waiting": len(self.waiters) + len(self.continuing),
            "limit": self.limit,
        }


def snapshot(engine: TTSEngine | STTEngine | ChatEngine, kind: EngineKind) -> EngineHandle[Any]:
    """The engine's handle as of now. Blocking (``capabilities()`` may read files)."""
    return EngineHandle(engine.name, engine.version, kind, engine.capabilities())
