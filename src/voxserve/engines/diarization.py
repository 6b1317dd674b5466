"""Speaker diarization: who spoke when. The ``Diarizer`` protocol, its result types, and the
``DiarizationRunner`` that runs one diarizer off the event loop.

A diarizer is blocking, like every engine: ``diarize`` finds the speaker turns of a whole clip
(anonymous engine labels, each with a voice print), ``embed`` gives the voice print of the main
speaker of a short clip (for ``speaker_references``). The runner loads it lazily, once, in a
worker thread; runs at most ``limit`` calls at once, with at most ``max_queue`` waiting (more is
``Overloaded``); and runs every call through ``voxserve.offload``, so the loop never waits.
Engines never import ``core`` or ``api``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from voxserve.audio.types import AudioClip
from voxserve.engines.guards import engine_errors
from voxserve.errors import Overloaded
from voxserve.offload import run_in_thread

T = TypeVar("T")


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
    """Runs one ``Diarizer``: lazy loading, a bounded number of calls at once, off the loop.

    Built once by the composition root; ``close`` unloads it.
    """

    def __init__(
        self, diarizer: Diarizer, *, limit: int = 1, max_queue: int = 8, retry_after: int = 5
    ) -> None:
        self.diarizer = diarizer
        self._slots = asyncio.Semaphore(max(1, limit))
        self._max_queue = max_queue
        self._retry_after = retry_after
        self._waiting = 0
        self._loaded = False
        self._load_lock = asyncio.Lock()

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
        """The main speaker's voice print. Raises Overloaded, ValidationFailed, EngineFailure."""
        return await self._run("speaker embedding", self.diarizer.embed, audio)

    async def close(self) -> None:
        if self._loaded:
            await run_in_thread(self.diarizer.unload)
            self._loaded = False

    async def _run(self, action: str, fn: Callable[[AudioClip], T], audio: AudioClip) -> T:
        if self._slots.locked() and self._waiting >= self._max_queue:
            raise Overloaded(
                f"The {self.name} diarizer is busy; try again shortly.",
                retry_after=self._retry_after,
            )
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

    async def _load(self) -> None:
        async with self._load_lock:
            if not self._loaded:
                await run_in_thread(self.diarizer.load)
                self._loaded = True
