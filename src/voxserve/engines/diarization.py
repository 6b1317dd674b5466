"""Speaker diarization: who spoke when. The ``Diarizer`` protocol, its result types, and the
``DiarizationRunner`` that runs one diarizer off the event loop.

A diarizer is blocking, like every engine: ``diarize`` finds the speaker turns of a whole clip
(anonymous engine labels, each with a voice print), ``embed`` gives the voice print of the main
speaker of a short clip (for ``speaker_references``). The runner loads it lazily, once, in a
worker thread; runs at most ``limit`` calls at once, with at most ``max_queue`` waiting (more is
``Overloaded``); runs every call through ``voxserve.offload``, so the loop never waits; and,
like the engine manager's engines, unloads it once unused for ``idle_unload_seconds``
(``engines.idle_unload_seconds``; the next call loads it again). It remembers the voice prints
of the last ``embed_cache`` clips, so a reference sent again is not embedded again. Engines
never import ``core`` or ``api``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
from cachetools import LRUCache

from voxserve.audio.types import AudioClip
from voxserve.engines.guards import engine_errors
from voxserve.errors import Overloaded
from voxserve.offload import run_in_thread

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeakerTurn:
    """One stretch of one speaker's speech."""

    speaker: str
    """The engine's anonymous label (``SPEAKER_01``); core renames it."""
    start: float
    """Seconds from the start of the clip."""
    end: float


@dataclass(frozen=True)
class Diarization:
    """Every speaker turn of a clip, in time order, and each speaker's voice print."""

    turns: tuple[SpeakerTurn, ...]
    voices: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Label -> embedding (comparable by cosine similarity with ``Diarizer.embed``)."""


@runtime_checkable
class Diarizer(Protocol):
    """A speaker diarizer. Every method may block; the runner calls them in worker threads."""

    name: str
    version: str
    sample_rate: int
    """The rate it wants its input at (mono float32)."""

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def diarize(self, audio: AudioClip) -> Diarization:
        """The speaker turns of ``audio`` (no turns when nobody speaks).

        Raises:
            EngineFailure: diarization failed.
        """

    def embed(self, audio: AudioClip) -> np.ndarray:
        """The voice print of the main speaker of ``audio`` (a reference clip).

        Raises:
            ValidationFailed: no speech in the clip.
        """


def is_diarizer(engine: object) -> bool:
    """Whether ``engine`` is a diarizer (it has ``diarize``), not a TTS, STT or chat engine."""
    return callable(getattr(engine, "diarize", None))


class DiarizationRunner:
    """Runs one ``Diarizer``: lazy loading, a bounded number of calls at once, off the loop,
    idle unloading (``run_unloader``).

    Invariant: the diarizer is unloaded only under the load lock and with no call admitted
    (waiting or running), so a call never runs on an unloaded model; a call that arrives while
    it unloads waits for the lock and loads it again. Built once by the composition root;
    ``close`` unloads it.
    """

    def __init__(
        self,
        diarizer: Diarizer,
        *,
        limit: int = 1,
        max_queue: int = 8,
        retry_after: int = 5,
        idle_unload_seconds: float = 0.0,
        embed_cache: int = 64,
    ) -> None:
        self.diarizer = diarizer
        self.idle_unload_seconds = idle_unload_seconds
        """Unload after this long unused (0: never)."""
        self._active = 0
        self._last_used = time.monotonic()
        self._slots = asyncio.Semaphore(max(1, limit))
        self._max_queue = max_queue
        self._retry_after = retry_after
        self._waiting = 0
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._prints: LRUCache[tuple[str, str, int, str, bytes], np.ndarray] | None = (
            LRUCache(embed_cache) if embed_cache > 0 else None
        )

    @property
    def name(self) -> str:
        return self.diarizer.name

    @property
    def sample_rate(self) -> int:
        return self.diarizer.sample_rate

    async def diarize(self, audio: AudioClip) -> Diarization:
        """The speaker turns of ``audio``. Raises Overloaded, EngineFailure."""
        return await self._run("diarization", self.diarizer.diarize, audio)

    async def embed(self, audio: AudioClip) -> np.ndarray:
        """The main speaker's voice print, remembered for the last ``embed_cache`` clips (by a
        hash of their samples), so a speaker reference sent again costs no embedding.

        Raises:
            Overloaded, ValidationFailed, EngineFailure.
        """
        if self._prints is None:
            return await self._run("speaker embedding", self.diarizer.embed, audio)
        key = await run_in_thread(self._print_key, audio)
        found = self._prints.get(key)
        if found is None:
            found = await self._run("speaker embedding", self.diarizer.embed, audio)
            self._prints[key] = found
        return found.copy()

    def _print_key(self, audio: AudioClip) -> tuple[str, str, int, str, bytes]:
        samples = np.ascontiguousarray(audio.samples)
        digest = hashlib.blake2b(samples.data, digest_size=16).digest()
        return (
            self.diarizer.name,
            self.diarizer.version,
            audio.sample_rate,
            samples.dtype.str,
            digest,
        )

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def close(self) -> None:
        async with self._load_lock:
            await self._unload()

    async def unload_idle(self, now: float | None = None) -> bool:
        """Unload the diarizer when it is loaded, has no call, and has been unused longer than
        ``idle_unload_seconds`` (0: never).

        Args:
            now: a ``time.monotonic()`` reading (tests pass one); default the current time.

        Returns:
            Whether it was unloaded.
        """
        limit = self.idle_unload_seconds
        now = time.monotonic() if now is None else now
        if limit <= 0 or not self._loaded or self._active or now - self._last_used <= limit:
            return False
        async with self._load_lock:
            if not self._loaded or self._active:
                return False
            log.info("unloading idle diarizer %s (%.0f s unused)", self.name, now - self._last_used)
            await self._unload()
        return True

    async def run_unloader(self, interval: float | None = None) -> None:
        """Call ``unload_idle`` forever (run it as a task; cancel it to stop); returns at once
        when idle unloading is off. The interval is the engine manager's."""
        limit = self.idle_unload_seconds
        if limit <= 0:
            return
        interval = interval if interval is not None else max(1.0, min(60.0, limit / 4))
        while True:
            await asyncio.sleep(interval)
            await self.unload_idle()

    async def _unload(self) -> None:
        if self._loaded:
            self._loaded = False
            try:
                await run_in_thread(self.diarizer.unload)
            except Exception:
                log.exception("diarizer %s failed to unload", self.name)

    async def _run(self, action: str, fn: Callable[[AudioClip], T], audio: AudioClip) -> T:
        if self._slots.locked() and self._waiting >= self._max_queue:
            raise Overloaded(
                f"The {self.name} diarizer is busy; try again shortly.",
                retry_after=self._retry_after,
            )
        self._active += 1
        try:
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
            try:
                with engine_errors(self.name, action):
                    await self._load()
                    return await run_in_thread(fn, audio)
            finally:
                self._slots.release()
        finally:
            self._active -= 1
            self._last_used = time.monotonic()

    async def _load(self) -> None:
        async with self._load_lock:
            if not self._loaded:
                await run_in_thread(self.diarizer.load)
                self._loaded = True
