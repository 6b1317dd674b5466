"""A pool of interchangeable backends (remote servers of one kind): capacity, health, routing.

Routing, in order:

1. a caller's ``prefer`` backend (stickiness: the one that last spoke a cloned voice, the one a
   realtime session started on) when it is healthy and has a free slot;
2. else the healthy backend with the fewest requests in flight (ties: the one chosen longest
   ago, so equal backends take turns);
3. no healthy backend has a free slot: ``Overloaded`` (429 with ``Retry-After``);
4. no backend is healthy at all: the least busy one is tried anyway (its health may be stale),
   so an outage answers as fast as a connection attempt and ends with the first success.

A connection failure (``RemoteUnreachable``) or a 503 from the remote is retried once on another
backend before the caller sees it; an unreachable backend leaves the rotation at once.
``check_health`` (run periodically by the engine manager) asks every backend for a cheap page
and takes failing ones out, or brings them back.

Invariants: ``in_flight`` never exceeds ``capacity`` for a routed call (probes of an all-down
pool included); every lease is given back however the call ends. All state sits behind one
``threading.Lock``: the engines run in worker threads.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, cast, runtime_checkable

import httpx

from voxserve.engines.remote_http import RemoteServer, RemoteStatusError, RemoteUnreachable
from voxserve.errors import EngineFailure, Overloaded

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")

HEALTH_PATH = "/models"
"""Cheap on every OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI)."""
_END: object = object()
"""What ``next`` gives for an iterator without items."""
_STICKY_KEYS = 4096
"""Remembered sticky keys (voice states); the oldest is forgotten first."""


@runtime_checkable
class HealthChecked(Protocol):
    """An engine whose backends the manager checks periodically (in a worker thread)."""

    def check_health(self) -> None:
        """Ask each backend whether it is up and update the rotation. Blocking; never raises."""

    def backend_status(self) -> list[dict[str, object]]:
        """Per backend: url, healthy, in_flight, capacity."""

    def close(self) -> None:
        """Close the clients kept for health checks. The manager calls it when it closes, never
        on idle unloading (health checks go on while the engine is unloaded). Blocking."""


@dataclass(eq=False)
class Backend(Generic[E]):
    """One server in a pool: its engine, capacity and live state."""

    url: str
    engine: E
    capacity: int
    health: RemoteServer
    """A client with a short timeout, only for health checks."""
    in_flight: int = 0
    healthy: bool = True
    last_used: float = field(default_factory=time.monotonic)
    """When it was last chosen."""


class _NoBackend(Exception):
    """Nothing to route to: every backend was excluded."""


class BackendPool(Generic[E]):
    """Backends of one kind; hands out leases on them and retries once on connection failures.

    Args:
        backends: the servers, in the configured order.
        label: what the pool serves, for messages ("remote speech").
        retry_after: seconds sent with ``Overloaded`` when every backend is full.
    """

    def __init__(self, backends: Sequence[Backend[E]], *, label: str, retry_after: int) -> None:
        if not backends:
            raise ValueError("a pool needs at least one backend")
        self.backends = tuple(backends)
        self.label = label
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._sticky: OrderedDict[str, Backend[E]] = OrderedDict()

    @property
    def capacity(self) -> int:
        """Requests the whole pool runs at once (every backend healthy)."""
        return sum(backend.capacity for backend in self.backends)

    def first_healthy(self) -> Backend[E]:
        """The first backend in configured order that is up (the first one when none is)."""
        with self._lock:
            return next((b for b in self.backends if b.healthy), self.backends[0])

    # ------------------------------------------------------------------ routing

    def run(
        self, call: Callable[[E], T], *, key: str | None = None, prefer: Backend[E] | None = None
    ) -> tuple[T, Backend[E]]:
        """``call(engine)`` on a routed backend, retried once elsewhere on a connection failure
        or a 503.

        Args:
            key: a sticky key: the backend that last served it is preferred, and the one that
                serves it now is remembered.
            prefer: a backend to prefer (when healthy and free), e.g. a realtime session's.

        Returns:
            The result and the backend that produced it.

        Raises:
            Overloaded: every healthy backend is full. Whatever the last try raised.
        """
        backend, _, result = self._start(lambda engine: iter((call(engine),)), key, prefer)
        self._release(backend)
        return cast(T, result), backend

    def hold(self, call: Callable[[E], T]) -> tuple[T, Backend[E]]:
        """``call(engine)`` routed and retried as by ``run``, but the backend stays leased
        (counted in flight) until ``release(backend)``: for a long-lived connection such as a
        realtime socket, so routing and capacity see it for as long as it is open."""
        backend, _, result = self._start(lambda engine: iter((call(engine),)), None, None)
        return cast(T, result), backend

    def release(self, backend: Backend[E]) -> None:
        """End a lease taken by ``hold``."""
        self._release(backend)

    def stream(self, call: Callable[[E], Iterator[T]], *, key: str | None = None) -> Iterator[T]:
        """The items of ``call(engine)`` on a routed backend, which stays leased until the
        iterator ends or is closed. A connection failure or 503 before the first item retries
        once on another backend; later errors go to the caller (half an answer cannot be
        replayed). ``key`` as for ``run``."""
        backend, items, first = self._start(call, key, None)
        try:
            if first is not _END:
                yield cast(T, first)
                yield from items
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self._release(backend)

    def _start(
        self, call: Callable[[E], Iterator[T]], key: str | None, prefer: Backend[E] | None
    ) -> tuple[Backend[E], Iterator[T], object]:
        """Lease a backend and get the first item from it (one retry elsewhere); the lease is
        held on return, released on every error."""
        if key is not None:
            prefer = self.sticky(key) or prefer
        backend = self._take(prefer)
        try:
            items, first = self._first(call, backend)
        except EngineFailure as exc:
            self._release(backend)
            if not _retryable(exc):
                raise
            backend = self._retry_target(backend, exc)
            try:
                items, first = self._first(call, backend)
            except BaseException as again:
                self._release(backend)
                if isinstance(again, RemoteUnreachable):
                    self._mark(backend, healthy=False)
                raise
        except BaseException:
            self._release(backend)
            raise
        if key is not None:
            self.remember(key, backend)
        return backend, items, first

    def _first(
        self, call: Callable[[E], Iterator[T]], backend: Backend[E]
    ) -> tuple[Iterator[T], object]:
        items = call(backend.engine)
        first = next(items, _END)
        self._mark(backend, healthy=True)  # a probe of a down backend that works brings it back
        return items, first

    def _retry_target(self, failed: Backend[E], exc: EngineFailure) -> Backend[E]:
        """Another backend for the one retry; the original error when there is none."""
        if isinstance(exc, RemoteUnreachable):
            self._mark(failed, healthy=False)
        try:
            backend = self._take(None, exclude=failed)
        except _NoBackend:
            raise exc from None
        log.warning(
            "%s server %s failed (%s); retrying on %s", self.label, failed.url, exc, backend.url
        )
        return backend

    def _take(self, prefer: Backend[E] | None, exclude: Backend[E] | None = None) -> Backend[E]:
        with self._lock:
            candidates = [b for b in self.backends if b is not exclude]
            if not candidates:
                raise _NoBackend
            healthy = [b for b in candidates if b.healthy]
            free = [b for b in healthy or candidates if b.in_flight < b.capacity]
            if not free:
                raise Overloaded(
                    f"Every {self.label} server is busy; try again shortly.",
                    retry_after=self.retry_after,
                )
            if prefer is not None and prefer in free:
                chosen = prefer
            else:
                chosen = min(free, key=lambda b: (b.in_flight, b.last_used))
            chosen.in_flight += 1
            chosen.last_used = time.monotonic()
            return chosen

    def _release(self, backend: Backend[E]) -> None:
        with self._lock:
            backend.in_flight -= 1

    # ------------------------------------------------------------------ stickiness

    def sticky(self, key: str) -> Backend[E] | None:
        """The backend last used for ``key`` (e.g. a voice state's hash), if remembered."""
        with self._lock:
            backend = self._sticky.get(key)
            if backend is not None:
                self._sticky.move_to_end(key)
            return backend

    def remember(self, key: str, backend: Backend[E]) -> None:
        with self._lock:
            self._sticky[key] = backend
            self._sticky.move_to_end(key)
            while len(self._sticky) > _STICKY_KEYS:
                self._sticky.popitem(last=False)

    # ------------------------------------------------------------------ health

    def check_health(self) -> None:
        """GET ``{url}/models`` on every backend: any answer below 500 is up; a 5xx, a refused
        connection or a timeout takes the backend out. Blocking; never raises."""
        for backend in self.backends:
            self._mark(backend, healthy=_answers(backend.health))

    def _mark(self, backend: Backend[E], *, healthy: bool) -> None:
        with self._lock:
            changed = backend.healthy != healthy
            backend.healthy = healthy
        if changed and healthy:
            log.info("%s server %s is back in the pool", self.label, backend.url)
        elif changed:
            log.warning("%s server %s left the pool (unhealthy)", self.label, backend.url)

    def status(self) -> list[dict[str, object]]:
        """Per backend: url, healthy, in_flight, capacity."""
        with self._lock:
            return [
                {
                    "url": b.url,
                    "healthy": b.healthy,
                    "in_flight": b.in_flight,
                    "capacity": b.capacity,
                }
                for b in self.backends
            ]

    def close(self) -> None:
        """Close every backend's health-check client (it reopens if a check runs later)."""
        for backend in self.backends:
            backend.health.close()


def _retryable(exc: EngineFailure) -> bool:
    if isinstance(exc, RemoteUnreachable):
        return True
    return isinstance(exc, RemoteStatusError) and exc.remote_status == 503


def _answers(server: RemoteServer) -> bool:
    try:
        server.request("GET", HEALTH_PATH)
    except RemoteStatusError as exc:
        return exc.remote_status < 500
    except (EngineFailure, httpx.HTTPError):
        return False
    return True


def state_key(voice_state: bytes) -> str:
    """A short, stable key for a cloned voice's state (what a backend has cached)."""
    return hashlib.blake2b(voice_state, digest_size=16).hexdigest()
