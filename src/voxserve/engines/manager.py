"""The engine manager: one owner for every engine's loading, concurrency and unloading.

Each engine gets a concurrency limit (``EngineSettings.concurrency[name]``, else the engine's
``max_concurrency``) and a bounded FIFO queue of ``max_queue`` waiters. A request that finds the
queue full fails at once with ``Overloaded``; nothing waits without bound. A freed slot goes to
the oldest waiter, so a long text spoken sentence by sentence (one ``stream_tts`` call each)
re-queues between sentences and other requests get their first sentence early.

Engines load lazily on first use, once, in a worker thread; ``unload_idle`` frees engines that
have been idle too long, and the next use loads them again. Every blocking call runs through
``voxserve.offload``, so the event loop never waits on inference.

Core sees engines as ``EngineHandle`` snapshots (``tts_handles()``, ``tts_handle(name)``...), never
as engine objects. A snapshot is taken when the engine is registered (build the manager off the
loop: ``await run_in_thread(EngineManager, engines, settings)``), after every load and after every
synthesis (a remote speech engine learns its voices on first contact), always in a worker thread.

The engine set can change while serving (``update_engines``: the models folder gained or lost a
model). A dropped engine leaves every lookup at once; work it is doing finishes on the slots it
holds, and it is unloaded once idle (``unload_retired``).

Asking for an engine that is not installed is ``InvalidRequest`` (400, field ``model``) naming the
installed ones: the same answer the engine-choice policy gives for an unknown model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.guards import SlotStream, engine_errors, guarded
from voxserve.engines.handles import ChatHandle, EngineHandle, EngineKind, STTHandle, TTSHandle
from voxserve.engines.pool import HealthChecked
from voxserve.engines.protocol import (
    ChatDelta,
    ChatEngine,
    ChatRequest,
    Segment,
    STTEngine,
    SynthesisRequest,
    TranscriptionInfo,
    TranscriptionOptions,
    TTSEngine,
)
from voxserve.engines.slots import E, EngineSlots, snapshot
from voxserve.engines.streaming import (
    StreamingSTTEngine,
    StreamUpdate,
    STTStream,
    stream_over_batch,
)
from voxserve.errors import InvalidRequest, ServiceUnavailable
from voxserve.offload import iterate_in_thread, run_in_thread
from voxserve.settings import EngineSettings

log = logging.getLogger(__name__)

AnyEngine = TTSEngine | STTEngine | ChatEngine
T = TypeVar("T")

_KIND_METHODS: tuple[tuple[EngineKind, str], ...] = (
    ("tts", "synthesize"),
    ("stt", "transcribe"),
    ("chat", "complete"),
)
_KIND_LABELS: dict[EngineKind, str] = {"tts": "speech", "stt": "transcription", "chat": "chat"}


def engine_kind(engine: object) -> EngineKind:
    """What an engine does, from the method that does it.

    The runtime-checkable protocols share ``name``, ``load``, ``capabilities``... and
    ``isinstance`` only checks that members exist, so it cannot tell the kinds apart.

    Raises:
        TypeError: the object has none of ``synthesize``, ``transcribe`` or ``complete``.
    """
    for kind, method in _KIND_METHODS:
        if callable(getattr(engine, method, None)):
            return kind
    raise TypeError(f"{type(engine).__name__} is not a TTS, STT or chat engine")


class EngineManager:
    """Owns every engine: lookup, lazy loading, per-engine concurrency, idle unloading.

    Built once by the composition root. Every method that runs an engine takes one of its slots
    (``Overloaded`` when its queue is full), loads it if needed, and runs the engine in worker
    threads. Streams hold their slot until they end, fail or are closed; close them (``aclose`` or
    ``contextlib.aclosing``) when stopping early.
    """

    def __init__(self, engines: Iterable[AnyEngine], settings: EngineSettings) -> None:
        self._settings = settings
        self._tts: dict[str, EngineSlots[TTSEngine]] = {}
        self._stt: dict[str, EngineSlots[STTEngine]] = {}
        self._chat: dict[str, EngineSlots[ChatEngine]] = {}
        self._closed = False
        self._retired: list[EngineSlots[Any]] = []
        """Engines no longer served (``update_engines``), loaded until their work is done."""
        self.tracer: trace.Tracer = trace.NoOpTracer()
        """Engine work shows as spans of this tracer (the composition root sets it)."""
        for engine in engines:
            self._register(engine)

    # ------------------------------------------------------------------ lookup

    def tts_handles(self) -> list[TTSHandle]:
        """Every speech engine as a snapshot, best first."""
        return [s.handle for s in self._tts.values()]

    def stt_handles(self) -> list[STTHandle]:
        """Every transcription engine as a snapshot, best first."""
        return [s.handle for s in self._stt.values()]

    def chat_handles(self) -> list[ChatHandle]:
        """Every chat engine as a snapshot, best first."""
        return [s.handle for s in self._chat.values()]

    def handles(self, kind: EngineKind) -> list[EngineHandle[Any]]:
        """Every engine of ``kind`` as a snapshot, best first."""
        return [s.handle for s in self._group(kind).values()]

    def tts_handle(self, name: str) -> TTSHandle:
        """The speech engine called ``name``. Raises InvalidRequest (not installed)."""
        handle: TTSHandle = self._entry(self._tts, "tts", name).handle
        return handle

    def stt_handle(self, name: str) -> STTHandle:
        """The transcription engine called ``name``. Raises InvalidRequest (not installed)."""
        handle: STTHandle = self._entry(self._stt, "stt", name).handle
        return handle

    def chat_handle(self, name: str) -> ChatHandle:
        """The chat engine called ``name``. Raises InvalidRequest (not installed)."""
        handle: ChatHandle = self._entry(self._chat, "chat", name).handle
        return handle

    def handle(self, kind: EngineKind, name: str) -> EngineHandle[Any]:
        """The engine of ``kind`` called ``name``. Raises InvalidRequest (not installed)."""
        return self._entry(self._group(kind), kind, name).handle

    # Raw engines, for the CLI and tests; core uses handles.

    def tts(self, name: str) -> TTSEngine:
        """The TTS engine called ``name``. Raises InvalidRequest."""
        return self._entry(self._tts, "tts", name).engine

    def stt(self, name: str) -> STTEngine:
        """The STT engine called ``name``. Raises InvalidRequest."""
        return self._entry(self._stt, "stt", name).engine

    def chat(self, name: str) -> ChatEngine:
        """The chat engine called ``name``. Raises InvalidRequest."""
        return self._entry(self._chat, "chat", name).engine

    def tts_engines(self) -> list[TTSEngine]:
        return [s.engine for s in self._tts.values()]

    def stt_engines(self) -> list[STTEngine]:
        return [s.engine for s in self._stt.values()]

    def chat_engines(self) -> list[ChatEngine]:
        return [s.engine for s in self._chat.values()]

    def status(self) -> list[dict[str, Any]]:
        """Per engine: name, kind, loaded, active, waiting, limit (for a readiness endpoint)."""
        groups: tuple[dict[str, Any], ...] = (self._tts, self._stt, self._chat)
        return [slots.status() for group in groups for slots in group.values()]

    def tts_busy(self, name: str) -> bool:
        """Whether a piece for TTS engine ``name`` asked for now would wait for others' work.
        Raises InvalidRequest."""
        return self._entry(self._tts, "tts", name).busy()

    # ------------------------------------------------------------------ work

    async def stream_tts(
        self, name: str, request: SynthesisRequest, *, admitted: bool = False
    ) -> AsyncGenerator[Samples, None]:
        """Synthesize ``request`` with engine ``name``, chunk by chunk.

        ``admitted``: a later piece of a request already under way; it queues like the others
        but is never refused for a full queue (a half-spoken answer must not fail for load).

        After the last chunk, the engine's handle is refreshed (in the worker thread that pulled
        it): a remote engine may have learnt its voices meanwhile.

        Raises:
            InvalidRequest: no such engine.
            Overloaded: its queue is full.
            Unsupported, EngineFailure: from the engine.
        """
        slots = self._entry(self._tts, "tts", name)
        engine = slots.engine

        def chunks() -> Iterator[Samples]:
            yield from engine.synthesize(request)
            slots.refresh()

        async with self._slot(slots, admitted=admitted):
            with engine_errors(name, "synthesis"):
                stream = iterate_in_thread(chunks)
                async with aclosing(stream):
                    async for chunk in stream:
                        yield chunk

    async def clone_voice(self, name: str, clip: AudioClip) -> bytes:
        """Compute a voice state for ``clip`` with engine ``name``.

        Raises:
            InvalidRequest, Overloaded; Unsupported, EngineFailure from the engine.
        """
        slots = self._entry(self._tts, "tts", name)
        async with self._slot(slots):
            with engine_errors(name, "voice cloning"):
                return await run_in_thread(slots.engine.clone_voice, clip)

    async def transcribe(
        self, name: str, audio: AudioClip, options: TranscriptionOptions, *, admitted: bool = False
    ) -> tuple[TranscriptionInfo, SlotStream[Segment]]:
        """Start a transcription: info now, segments as they are decoded.

        The engine's slot is held until the segment iterator is exhausted or closed; always
        exhaust it or ``aclose()`` it. ``admitted``: a later window of a request under way, never
        refused for a full queue.

        Raises:
            InvalidRequest, Overloaded; Unsupported, EngineFailure from the engine.
        """
        slots = self._entry(self._stt, "stt", name)
        span = self._span(slots)

        def give_back() -> None:
            self._give_back(slots)
            span.end()

        try:
            await self._take(slots, admitted=admitted)
        except BaseException:
            span.end()
            raise
        try:
            with engine_errors(name, "transcription"):
                info, segments = await run_in_thread(slots.engine.transcribe, audio, options)
        except BaseException:
            give_back()
            raise
        stream = guarded(name, "transcription", iterate_in_thread(lambda: segments))
        return info, SlotStream(stream, give_back)

    def open_stt_stream(self, name: str, options: TranscriptionOptions) -> STTStream:
        """A realtime stream on STT engine ``name``: the engine's own (``StreamingSTTEngine``),
        else LocalAgreement over its batch decode when it gives word timestamps. Opening
        blocks nothing; run each step through ``run_stream_step``.

        Raises:
            InvalidRequest: no such engine. Unsupported: the engine cannot stream.
        """
        slots = self._entry(self._stt, "stt", name)
        engine = slots.engine
        if isinstance(engine, StreamingSTTEngine):
            return engine.open_stream(options)
        capabilities = slots.handle.capabilities
        return stream_over_batch(
            name,
            engine.transcribe,
            word_timestamps=capabilities.word_timestamps,
            sample_rate=capabilities.sample_rate,
            options=options,
            needs="an engine with word timestamps, such as faster-whisper "
            "(voxserve models pull faster-whisper-base)",
        )

    async def run_stream_step(
        self, name: str, step: Callable[[Samples], StreamUpdate], audio: Samples
    ) -> StreamUpdate:
        """Run one blocking stream call (``step`` or ``commit``) in a worker thread while
        holding a slot of engine ``name``; steps of every session queue FIFO with other work,
        so sessions share the engine fairly (a session that waited brings more audio to its
        next step). Never refused for a full queue: the session was admitted already.

        Raises:
            InvalidRequest; EngineFailure from the engine.
        """
        slots = self._entry(self._stt, "stt", name)
        async with self._slot(slots, admitted=True):
            with engine_errors(name, "realtime transcription"):
                return await run_in_thread(step, audio)

    async def chat_stream(self, name: str, request: ChatRequest) -> AsyncGenerator[ChatDelta, None]:
        """Generate an answer with chat engine ``name``, piece by piece.

        Raises:
            InvalidRequest, Overloaded; InvalidRequest, EngineFailure from the engine.
        """
        slots = self._entry(self._chat, "chat", name)
        engine = slots.engine
        async with self._slot(slots):
            with engine_errors(name, "chat"):
                stream = iterate_in_thread(lambda: engine.complete(request))
                async with aclosing(stream):
                    async for delta in stream:
                        yield delta

    async def count_tokens(self, name: str, request: ChatRequest) -> int:
        """Prompt tokens ``request`` would use with engine ``name``.

        Takes no slot (tokenizing is cheap and must not queue behind generations), but loads
        the engine and keeps it from being unloaded meanwhile. Raises InvalidRequest, EngineFailure.
        """
        slots = self._entry(self._chat, "chat", name)
        slots.users += 1
        try:
            await self._load(slots)
            with engine_errors(name, "token counting"):
                return await run_in_thread(slots.engine.count_tokens, request)
        finally:
            slots.users -= 1
            slots.last_used = time.monotonic()

    # ------------------------------------------------------------------ loading and unloading

    async def preload(self, names: Iterable[str]) -> None:
        """Load the engines named (whatever their kind) now rather than on first use. A failure
        is logged, not raised: the engine is tried again on first use."""
        for name in names:
            matches = [slots for slots in self._all() if slots.engine.name == name]
            if not matches:
                log.warning("cannot preload engine %s: no engine has that name", name)
            for slots in matches:
                try:
                    await self._load(slots)
                except Exception:
                    log.exception("preloading engine %s failed", name)
                else:
                    log.info("engine %s loaded", name)

    async def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload engines idle longer than ``idle_unload_seconds`` (0: never) with no work.

        Args:
            now: a ``time.monotonic()`` reading (tests pass one); default the current time.

        Returns:
            The names of the engines unloaded.
        """
        limit = self._settings.idle_unload_seconds
        if limit <= 0:
            return []
        now = time.monotonic() if now is None else now
        unloaded = []
        for slots in self._all():
            idle = slots.idle_for(now)
            if idle is not None and idle > limit:
                log.info("unloading idle engine %s (%.0f s unused)", slots.engine.name, idle)
                await self._unload(slots)
                unloaded.append(slots.engine.name)
        return unloaded

    async def run_unloader(self, interval: float | None = None) -> None:
        """Call ``unload_idle`` forever (run as a task; cancel it to stop). Returns at once when
        idle unloading is off."""
        limit = self._settings.idle_unload_seconds
        if limit <= 0:
            return
        interval = interval if interval is not None else max(1.0, min(60.0, limit / 4))
        while True:
            await asyncio.sleep(interval)
            await self.unload_idle()

    async def run_health_checks(self, interval: float) -> None:
        """Check the backends of every pooled engine (``HealthChecked``) every ``interval``
        seconds, in worker threads, forever (run as a task; cancel it to stop). Returns at
        once when no engine has backends to check."""
        checked = [s.engine for s in self._all() if isinstance(s.engine, HealthChecked)]
        if not checked:
            return
        while True:
            await asyncio.sleep(interval)
            for engine in checked:
                await run_in_thread(engine.check_health)

    def backend_status(self) -> list[tuple[EngineKind, dict[str, object]]]:
        """``(kind, status)`` of every server of every pooled engine (for the metrics)."""
        return [
            (engine_kind(slots.engine), status)
            for slots in self._all()
            if isinstance(slots.engine, HealthChecked)
            for status in slots.engine.backend_status()
        ]

    async def close(self) -> None:
        """Refuse new work, unload every engine and close the pools' health-check clients.
        Call once the server has stopped serving (and its health checks); an engine still
        working is left loaded (unloading it under a running thread could crash native code)."""
        self._closed = True
        for slots in (*self._all(), *self._retired):
            if slots.active or slots.users:
                log.warning("engine %s still busy at shutdown; not unloading", slots.engine.name)
            else:
                await self._unload(slots)
            if isinstance(slots.engine, HealthChecked):
                await run_in_thread(slots.engine.close)

    # ------------------------------------------------------------------ changing the engine set

    async def update_engines(self, engines: Sequence[AnyEngine]) -> EngineChanges:
        """Serve exactly ``engines`` from now on, in this order (best first within each kind).

        An engine already served (the same object) keeps its slots, load state and handle; a
        new one is registered (its first handle is taken in a worker thread) and loads on first
        use; a served engine that is not listed is retired: it leaves every lookup at once (a
        request naming it gets the unknown-model answer), its running work finishes, and it is
        unloaded once idle. The switch is one assignment per kind, so readers on the loop see
        the old set or the new one.

        Returns:
            The names added and removed (an engine replaced by a new object under the same name
            is in both).
        """
        served = {id(slots.engine): slots for slots in self._all()}
        fresh = [engine for engine in engines if id(engine) not in served]
        built = await run_in_thread(lambda: {id(e): self._new_slots(e) for e in fresh})
        groups: dict[EngineKind, dict[str, EngineSlots[Any]]] = {"tts": {}, "stt": {}, "chat": {}}
        for engine in engines:
            slots = served.get(id(engine)) or built.get(id(engine))
            if slots is None:
                continue  # its capabilities failed (logged)
            if groups[slots.kind].setdefault(engine.name, slots) is not slots:
                log.warning(
                    "two %s engines are named %r; serving the first", slots.kind, engine.name
                )
        kept = {id(slots) for group in groups.values() for slots in group.values()}
        retired = [slots for slots in self._all() if id(slots) not in kept]
        self._tts, self._stt, self._chat = groups["tts"], groups["stt"], groups["chat"]
        self._retired.extend(retired)
        await self.unload_retired()
        added = tuple(s.engine.name for s in built.values() if s is not None and id(s) in kept)
        return EngineChanges(added=added, removed=tuple(s.engine.name for s in retired))

    async def unload_retired(self) -> list[str]:
        """Unload the retired engines that have no work left, and forget them.

        Returns:
            The names of the engines forgotten.
        """
        done = [s for s in self._retired if not (s.users or s.active or s.waiters or s.continuing)]
        self._retired = [s for s in self._retired if s not in done]
        for slots in done:
            if slots.loaded:
                log.info("unloading engine %s: its model was removed", slots.engine.name)
            await self._unload(slots)
        return [slots.engine.name for slots in done]

    # ------------------------------------------------------------------ internals

    def _register(self, engine: AnyEngine) -> None:
        kind = engine_kind(engine)
        group = self._group(kind)
        if engine.name in group:
            raise ValueError(f"two {kind} engines are named {engine.name!r}")
        slots = self._new_slots(engine)
        if slots is not None:
            group[engine.name] = slots

    def _new_slots(self, engine: AnyEngine) -> EngineSlots[Any] | None:
        """The engine's bookkeeping with its first handle (blocking), or None when it cannot
        say what it does (logged): such an engine cannot serve anything."""
        kind = engine_kind(engine)
        try:
            handle = snapshot(engine, kind)
        except Exception:
            log.exception("engine %s: capabilities unavailable; not serving it", engine.name)
            return None
        limit = self._settings.concurrency.get(engine.name) or handle.capabilities.max_concurrency
        return EngineSlots(engine, handle, max(1, limit), self._settings.max_queue)

    def _group(self, kind: EngineKind) -> dict[str, EngineSlots[Any]]:
        groups: dict[EngineKind, dict[str, Any]] = {
            "tts": self._tts,
            "stt": self._stt,
            "chat": self._chat,
        }
        return groups[kind]

    def _entry(
        self, group: dict[str, EngineSlots[E]], kind: EngineKind, name: str
    ) -> EngineSlots[E]:
        slots = group.get(name)
        if slots is None:
            raise unknown_model(_KIND_LABELS[kind], name, list(group))
        return slots

    def _all(self) -> list[EngineSlots[Any]]:
        return [*self._tts.values(), *self._stt.values(), *self._chat.values()]

    @asynccontextmanager
    async def _slot(
        self, slots: EngineSlots[Any], *, admitted: bool = False
    ) -> AsyncIterator[None]:
        span = self._span(slots)
        try:
            await self._take(slots, admitted=admitted)
            try:
                yield
            finally:
                self._give_back(slots)
        finally:
            span.end()

    def _span(self, slots: EngineSlots[Any]) -> trace.Span:
        """A span from asking for a slot to giving it back (a child of the request's span);
        started, not made current, so it may end in another task or context."""
        attributes = {"voxserve.engine": slots.engine.name, "voxserve.engine.kind": slots.kind}
        return self.tracer.start_span(f"engine.{slots.kind}", attributes=attributes)

    async def _take(self, slots: EngineSlots[Any], *, admitted: bool = False) -> None:
        """Take a slot and make sure the engine is loaded."""
        if self._closed:
            raise ServiceUnavailable("The server is shutting down.")
        await slots.acquire(self._settings.retry_after_seconds, admitted=admitted)
        slots.users += 1
        try:
            await self._load(slots)
        except BaseException:
            self._give_back(slots)
            raise

    def _give_back(self, slots: EngineSlots[Any]) -> None:
        slots.users -= 1
        slots.release()

    async def _load(self, slots: EngineSlots[Any]) -> None:
        with engine_errors(slots.engine.name, "loading"):
            await slots.ensure_loaded()

    async def _unload(self, slots: EngineSlots[Any]) -> None:
        try:
            await slots.unload()
        except Exception:
            log.exception("engine %s failed to unload", slots.engine.name)


@dataclass(frozen=True)
class EngineChanges:
    """What ``update_engines`` changed: engine names added and removed."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def unknown_model(label: str, name: str, installed: list[str]) -> InvalidRequest:
    """The one answer to a model name no installed engine has (400, field ``model``)."""
    names = ", ".join(installed) or "none"
    return InvalidRequest(
        f"Model '{name}' not found. Available {label} models: {names}.", field="model"
    )
