"""Speech recognisers that hold the GIL, run in a worker process of their own.

PocketSphinx's decoder keeps the GIL while it works: in a thread of the server's process it
freezes the event loop (``/health`` took seconds during a transcription, #14 item 5).
``ProcessSTTEngine`` is an ``STTEngine`` that hosts the real engine in a child process and talks
to it over a pipe; the server's worker thread only waits on the pipe, which releases the GIL,
so the loop keeps answering.

Protocol (one request at a time, under ``_lock``): ``("transcribe", audio, options)`` answers
``("info", info)``; then each ``("next",)`` answers ``("segment", segment)`` or ``("end",)``;
``("close",)`` drops the transcription. Any step may answer ``("error", type name, message,
field)``: a ``VoxError`` is raised again in the server under its own class, anything else as
``EngineFailure``. A child that dies is an ``EngineFailure`` and is started again on next use.

Invariants: the child holds at most one transcription; a new ``transcribe`` closes an
unfinished one first (the manager's slot guarantees no two overlap).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from voxserve import errors
from voxserve.audio.types import AudioClip
from voxserve.engines.protocol import (
    Segment,
    STTCapabilities,
    STTEngine,
    TranscriptionInfo,
    TranscriptionOptions,
)
from voxserve.errors import EngineFailure, VoxError

log = logging.getLogger(__name__)

Factory = str
"""``"package.module:ClassName"``: how the child builds the engine (no arguments)."""


def _build(factory: Factory) -> STTEngine:
    module, _, name = factory.partition(":")
    engine: STTEngine = getattr(importlib.import_module(module), name)()
    return engine


class ProcessSTTEngine:
    """An ``STTEngine`` whose work runs in a child process (see the module docstring)."""

    def __init__(self, factory: Factory) -> None:
        self._factory = factory
        self._local = _build(factory)  # never loaded here: names and capabilities only
        self.name = self._local.name
        self.version = self._local.version
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._open = False
        self._ticket = 0
        """Which transcription the child holds: an abandoned iterator never closes a newer one."""

    def capabilities(self) -> STTCapabilities:
        return self._local.capabilities()

    def load(self) -> None:
        """Start the child and load the engine there (blocking)."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()

    def unload(self) -> None:
        """Stop the child: the engine's memory goes with it."""
        with self._lock:
            self._stop()

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            if self._open:
                self._call(("close",))
            info = self._call(("transcribe", audio, options))[1]
            self._open = True
            self._ticket += 1
        return info, self._segments(self._ticket)

    def _segments(self, ticket: int) -> Iterator[Segment]:
        try:
            while True:
                with self._lock:
                    if ticket != self._ticket or not self._open:
                        return
                    reply = self._call(("next",))
                    if reply[0] == "end":
                        self._open = False
                        return
                yield reply[1]
        finally:
            with self._lock:
                if ticket == self._ticket and self._open and self._conn is not None:
                    self._open = False
                    self._call(("close",))

    def _call(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        conn = self._conn
        if conn is None:
            raise EngineFailure(f"{self.name} is not loaded")
        try:
            conn.send(message)
            reply: tuple[Any, ...] = conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._stop()
            raise EngineFailure(f"the {self.name} worker process stopped") from exc
        if reply[0] == "error":
            raise _rebuilt(*reply[1:])
        return reply

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no forked copy of the server's state
        parent, child = context.Pipe()
        process = context.Process(
            target=serve, args=(self._factory, child), name=f"voxserve-{self.name}", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn, self._open = process, parent, False
        self._call(("load",))
        log.info("%s runs in worker process %s", self.name, process.pid)

    def _stop(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        self._open = False
        if conn is not None:
            conn.close()
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


def _rebuilt(kind: str, message: str, field: str | None) -> Exception:
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, VoxError):
        return cls(message, field=field) if cls.__init__ is VoxError.__init__ else cls(message)
    return EngineFailure(message)


# ------------------------------------------------------------------------- the child's side


def serve(factory: Factory, conn: Connection) -> None:
    """The child's loop: build the engine, then answer requests until the pipe closes."""
    engine = _build(factory)
    segments: Iterator[Segment] | None = None
    handlers: dict[str, Callable[..., tuple[Any, ...]]] = {}

    def load() -> tuple[Any, ...]:
        engine.load()
        return ("ok",)

    def transcribe(audio: AudioClip, options: TranscriptionOptions) -> tuple[Any, ...]:
        nonlocal segments
        info, segments = engine.transcribe(audio, options)
        return ("info", info)

    def next_segment() -> tuple[Any, ...]:
        segment = next(segments, None) if segments is not None else None
        return ("end",) if segment is None else ("segment", segment)

    def close() -> tuple[Any, ...]:
        nonlocal segments
        segments = None
        return ("ok",)

    handlers.update(load=load, transcribe=transcribe, next=next_segment, close=close)
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = handlers[kind](*args)
        except Exception as exc:
            field = exc.field if isinstance(exc, VoxError) else None
            message = exc.message if isinstance(exc, VoxError) else f"{engine.name} failed"
            if not isinstance(exc, VoxError):
                log.exception("%s failed in its worker process", engine.name)
            reply = ("error", type(exc).__name__, message, field)
        conn.send(reply)
