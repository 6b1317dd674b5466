"""EngineManager and the thread adapter, driven by the fake engines."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import replace

import numpy as np
import pytest

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.engines.manager import EngineManager, engine_kind
from voxserve.engines.protocol import (
    ChatMessage,
    ChatRequest,
    PresetVoice,
    STTCapabilities,
    SynthesisRequest,
    TranscriptionOptions,
    TTSCapabilities,
)
from voxserve.engines.streaming import AgreementStream
from voxserve.errors import EngineFailure, InvalidRequest, Overloaded, Unsupported
from voxserve.offload import iterate_in_thread, run_in_thread
from voxserve.settings import EngineSettings

TEXT = "one two three four"
LONG_TEXT = " ".join(f"word{i}" for i in range(50))


class CountingTTS(FakeTTSEngine):
    """A fake that counts loads, unloads and chunks made, and can fail to load once."""

    def __init__(self, *, load_delay: float = 0.0, fail_load: bool = False, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.load_delay = load_delay
        self.fail_load = fail_load
        self.loads = 0
        self.unloads = 0
        self.chunks_made = 0
        self.closed_in: list[str] = []

    def load(self) -> None:
        time.sleep(self.load_delay)
        self.loads += 1
        if self.fail_load:
            self.fail_load = False
            raise RuntimeError("weights missing")
        super().load()

    def unload(self) -> None:
        self.unloads += 1
        super().unload()

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        try:
            for chunk in super().synthesize(request):
                self.chunks_made += 1
                yield chunk
        finally:
            self.closed_in.append(threading.current_thread().name)


def make_manager(engine: object, **settings: object) -> EngineManager:
    return EngineManager([engine], EngineSettings(**settings))  # type: ignore[list-item,arg-type]


async def collect(stream: AsyncIterator[Samples]) -> list[Samples]:
    return [chunk async for chunk in stream]


async def speak(manager: EngineManager, text: str = TEXT) -> list[Samples]:
    return await collect(manager.stream_tts("fake-tts", SynthesisRequest(text)))


async def until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Yield to the loop until ``predicate()`` holds (it reads state that has no event)."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# ---------------------------------------------------------------- lookup


def test_engine_kind_is_decided_by_method() -> None:
    assert engine_kind(FakeTTSEngine()) == "tts"
    assert engine_kind(FakeSTTEngine()) == "stt"
    assert engine_kind(FakeChatEngine()) == "chat"
    with pytest.raises(TypeError):
        engine_kind(object())


async def test_lookup_and_lists() -> None:
    tts, stt, chat = FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()
    manager = EngineManager([stt, tts, chat], EngineSettings())
    assert manager.tts("fake-tts") is tts
    assert manager.stt("fake-stt") is stt
    assert manager.chat("fake-chat") is chat
    assert manager.tts_engines() == [tts]
    assert manager.stt_engines() == [stt]
    assert manager.chat_engines() == [chat]
    # Asking for an engine that is not installed is the policy's unknown-model answer (400),
    # never a 404 of the manager's own.
    with pytest.raises(InvalidRequest, match="Available speech models: fake-tts"):
        manager.tts("fake-stt")
    with pytest.raises(InvalidRequest, match="Model 'nope' not found"):
        manager.chat("nope")
    with pytest.raises(InvalidRequest):
        await speak(EngineManager([], EngineSettings()))


async def test_handles_are_snapshots_of_the_engines() -> None:
    tts, stt = FakeTTSEngine(sample_rate=16000), FakeSTTEngine()
    manager = EngineManager([tts, stt], EngineSettings())
    [handle] = manager.tts_handles()
    assert (handle.name, handle.version, handle.kind) == ("fake-tts", "1", "tts")
    assert handle.capabilities == tts.capabilities()
    assert manager.tts_handle("fake-tts") is handle
    assert manager.handle("stt", "fake-stt") is manager.stt_handles()[0]
    assert manager.handles("chat") == []
    with pytest.raises(InvalidRequest):
        manager.stt_handle("fake-tts")


class GrowingVoices(FakeTTSEngine):
    """Learns one more voice each time it synthesizes, as a remote engine learns its list."""

    def __init__(self) -> None:
        super().__init__()
        self.extra: list[PresetVoice] = []
        self.capability_threads: list[str] = []

    def capabilities(self) -> TTSCapabilities:
        self.capability_threads.append(threading.current_thread().name)
        caps = super().capabilities()
        return replace(caps, voices=caps.voices + tuple(self.extra))

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        self.extra.append(PresetVoice(f"v{len(self.extra)}", "V", ("en",)))
        yield from super().synthesize(request)


async def test_handles_refresh_after_synthesis_off_the_loop() -> None:
    engine = GrowingVoices()
    manager = await run_in_thread(EngineManager, [engine], EngineSettings())
    before = manager.tts_handle("fake-tts")
    assert len(before.capabilities.voices) == 2
    await speak(manager)
    after = manager.tts_handle("fake-tts")
    assert [v.id for v in after.capabilities.voices][-1] == "v0"
    assert before.capabilities.voices == engine.capabilities().voices[:2]  # never mutated
    assert threading.main_thread().name not in engine.capability_threads[:-1]


async def test_an_unchanged_snapshot_keeps_its_handle() -> None:
    manager = make_manager(FakeTTSEngine())
    before = manager.tts_handle("fake-tts")
    await speak(manager)
    assert manager.tts_handle("fake-tts") is before


def test_an_engine_whose_capabilities_fail_is_not_served(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeTTSEngine):
        def capabilities(self) -> TTSCapabilities:
            raise RuntimeError("library missing")

    manager = EngineManager([Broken(), FakeSTTEngine()], EngineSettings())
    assert manager.tts_handles() == []
    assert [h.name for h in manager.stt_handles()] == ["fake-stt"]
    assert "capabilities unavailable" in caplog.text


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="fake-tts"):
        EngineManager([FakeTTSEngine(), FakeTTSEngine()], EngineSettings())


def test_status_reports_limits() -> None:
    manager = EngineManager(
        [FakeTTSEngine(max_concurrency=3), FakeSTTEngine()],
        EngineSettings(concurrency={"fake-stt": 2}),
    )
    assert manager.status() == [
        {"name": "fake-tts", "kind": "tts", "loaded": False, "active": 0, "waiting": 0, "limit": 3},
        {"name": "fake-stt", "kind": "stt", "loaded": False, "active": 0, "waiting": 0, "limit": 2},
    ]


# ---------------------------------------------------------------- loading


async def test_lazy_load_happens_once_under_concurrent_first_use() -> None:
    engine = CountingTTS(load_delay=0.1)
    manager = make_manager(engine, concurrency={"fake-tts": 4})
    assert engine.loads == 0
    async with asyncio.timeout(5):
        results = await asyncio.gather(*(speak(manager) for _ in range(4)))
    assert engine.loads == 1
    assert all(len(chunks) == 4 for chunks in results)
    assert manager.status()[0]["loaded"] is True


async def test_failed_load_is_an_engine_failure_and_is_retried() -> None:
    engine = CountingTTS(fail_load=True)
    manager = make_manager(engine)
    with pytest.raises(EngineFailure):
        await speak(manager)
    assert manager.status()[0]["active"] == 0
    assert len(await speak(manager)) == 4
    assert engine.loads == 2


async def test_preload_loads_named_engines_and_logs_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good, bad = CountingTTS(), CountingTTS(fail_load=True)
    bad.name = "broken"
    manager = EngineManager([good, bad], EngineSettings())
    await manager.preload(["fake-tts", "broken", "missing"])
    assert (good.loads, manager.status()[0]["loaded"]) == (1, True)
    assert manager.status()[1]["loaded"] is False
    assert "preloading engine broken failed" in caplog.text
    assert "no engine has that name" in caplog.text
    assert len(await speak(manager)) == 4
    assert good.loads == 1  # first use found it loaded


async def test_cancelled_first_use_does_not_load_twice() -> None:
    engine = CountingTTS(load_delay=0.2)
    manager = make_manager(engine)
    first = asyncio.create_task(speak(manager))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(5):
        assert len(await speak(manager)) == 4
    assert engine.loads == 1


async def test_idle_engines_are_unloaded_and_reloaded() -> None:
    engine = CountingTTS()
    manager = make_manager(engine, idle_unload_seconds=10)
    await speak(manager)
    assert await manager.unload_idle(now=time.monotonic() + 5) == []
    assert await manager.unload_idle(now=time.monotonic() + 11) == ["fake-tts"]
    assert (engine.loaded, engine.unloads) == (False, 1)
    await speak(manager)
    assert (engine.loaded, engine.loads) == (True, 2)


async def test_busy_engines_and_zero_setting_are_never_unloaded() -> None:
    engine = CountingTTS(delay=0.01)
    manager = make_manager(engine, idle_unload_seconds=10)
    async with aclosing(manager.stream_tts("fake-tts", SynthesisRequest(LONG_TEXT))) as stream:
        await anext(stream)
        assert await manager.unload_idle(now=time.monotonic() + 100) == []
    never = make_manager(CountingTTS(), idle_unload_seconds=0)
    await speak(never)
    assert await never.unload_idle(now=time.monotonic() + 1e9) == []


async def test_close_unloads_everything() -> None:
    tts, stt = CountingTTS(), FakeSTTEngine()
    manager = EngineManager([tts, stt], EngineSettings())
    await speak(manager)
    await manager.close()
    assert tts.unloads == 1
    assert not tts.loaded


# ---------------------------------------------------------------- concurrency


async def test_concurrency_limit_is_respected() -> None:
    engine = FakeTTSEngine(delay=0.01)
    manager = make_manager(engine, concurrency={"fake-tts": 2})
    async with asyncio.timeout(10):
        await asyncio.gather(*(speak(manager) for _ in range(6)))
    assert engine.peak_active == 2


async def test_full_queue_overloads_at_once_and_nothing_hangs() -> None:
    engine = FakeTTSEngine(delay=0.05)
    manager = make_manager(engine, concurrency={"fake-tts": 2}, max_queue=2, retry_after_seconds=7)

    async def attempt() -> tuple[str, float]:
        start = time.monotonic()
        try:
            await speak(manager)
        except Overloaded as exc:
            return f"overloaded {exc.retry_after}", time.monotonic() - start
        return "ok", time.monotonic() - start

    async with asyncio.timeout(10):
        results = await asyncio.gather(*(attempt() for _ in range(8)))
    outcomes = sorted(r for r, _ in results)
    assert outcomes == ["ok"] * 4 + ["overloaded 7"] * 4
    assert all(elapsed < 0.15 for r, elapsed in results if r != "ok")  # ok ones take 0.2 s+
    assert engine.peak_active <= 2
    assert manager.status()[0]["active"] == 0


async def test_zero_queue_refuses_when_busy() -> None:
    manager = make_manager(FakeTTSEngine(delay=0.05), max_queue=0)
    async with aclosing(manager.stream_tts("fake-tts", SynthesisRequest(TEXT))) as stream:
        await anext(stream)
        with pytest.raises(Overloaded):
            await speak(manager)


async def test_waiters_are_served_in_fifo_order() -> None:
    engine = FakeTTSEngine(delay=0.01)
    manager = make_manager(engine)
    order: list[int] = []

    async def waiter(i: int) -> None:
        await speak(manager)
        order.append(i)

    async with aclosing(manager.stream_tts("fake-tts", SynthesisRequest(TEXT))) as holder:
        await anext(holder)
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(waiter(i)))
            await until(lambda n=i: manager.status()[0]["waiting"] == n + 1)
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_first_pieces_go_before_later_pieces_of_running_requests() -> None:
    engine = FakeTTSEngine(delay=0.01)
    manager = make_manager(engine, max_queue=1)
    order: list[str] = []

    async def piece(label: str, admitted: bool) -> None:
        request = SynthesisRequest(label)
        await collect(manager.stream_tts("fake-tts", request, admitted=admitted))
        order.append(label)

    async with aclosing(manager.stream_tts("fake-tts", SynthesisRequest(TEXT))) as holder:
        await anext(holder)
        later = asyncio.create_task(piece("a-second", admitted=True))
        await until(lambda: manager.status()[0]["waiting"] == 1)
        fresh = asyncio.create_task(piece("b-first", admitted=False))
        await until(lambda: manager.status()[0]["waiting"] == 2)
        # The queue of new requests is full, but later pieces are never refused:
        also_later = asyncio.create_task(piece("a-third", admitted=True))
        await until(lambda: manager.status()[0]["waiting"] == 3)
    async with asyncio.timeout(10):
        await asyncio.gather(later, fresh, also_later)
    assert order == ["b-first", "a-second", "a-third"]


async def test_cancelled_waiter_leaves_the_queue() -> None:
    manager = make_manager(FakeTTSEngine(delay=0.01), max_queue=1)
    async with aclosing(manager.stream_tts("fake-tts", SynthesisRequest(TEXT))) as holder:
        await anext(holder)
        waiting = asyncio.create_task(speak(manager))
        await until(lambda: manager.status()[0]["waiting"] == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert manager.status()[0]["waiting"] == 0
        queued = asyncio.create_task(speak(manager))  # the queue has room again
        await until(lambda: manager.status()[0]["waiting"] == 1)
    async with asyncio.timeout(5):
        assert len(await queued) == 4
    assert manager.status()[0]["active"] == 0


async def test_closing_a_stream_early_frees_the_slot_and_stops_the_engine() -> None:
    engine = CountingTTS(delay=0.02)
    manager = make_manager(engine, max_queue=0)
    stream = manager.stream_tts("fake-tts", SynthesisRequest(LONG_TEXT))
    await anext(stream)
    await stream.aclose()
    assert engine.active == 0  # the engine's generator ran its cleanup
    assert engine.chunks_made < 5
    assert len(engine.closed_in) == 1
    assert engine.closed_in[0] != threading.main_thread().name
    assert manager.status()[0]["active"] == 0
    assert len(await speak(manager)) == 4


async def test_cancelling_a_consumer_frees_the_slot_and_stops_the_engine() -> None:
    engine = CountingTTS(delay=0.02)
    manager = make_manager(engine, max_queue=0)
    task = asyncio.create_task(speak(manager, LONG_TEXT))
    await until(lambda: engine.chunks_made >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The slot is back only once the engine's current chunk is done: it is never oversubscribed.
    assert engine.active == 0
    assert engine.chunks_made < 10
    assert manager.status()[0]["active"] == 0
    assert len(await speak(manager)) == 4


async def test_event_loop_stays_responsive_during_blocking_synthesis() -> None:
    manager = make_manager(FakeTTSEngine(delay=0.1))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    start = time.monotonic()
    await speak(manager)  # 4 chunks x 100 ms of time.sleep in the engine
    elapsed = time.monotonic() - start
    ticking.cancel()
    assert elapsed >= 0.4
    assert ticks >= 15


# ---------------------------------------------------------------- errors and other kinds


async def test_engine_errors_free_the_slot() -> None:
    manager = make_manager(FakeTTSEngine(fail_on="boom"), max_queue=0)
    with pytest.raises(EngineFailure):
        await speak(manager, "boom")
    assert manager.status()[0]["active"] == 0


async def test_unexpected_engine_exceptions_become_engine_failures() -> None:
    class Broken(FakeTTSEngine):
        def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
            yield np.zeros(10, dtype=np.float32)
            raise ZeroDivisionError("internal detail")

    manager = make_manager(Broken())
    with pytest.raises(EngineFailure) as caught:
        await speak(manager)
    assert "internal detail" not in caught.value.message
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


async def test_clone_voice() -> None:
    manager = make_manager(FakeTTSEngine())
    clip = AudioClip(np.full(16000, 0.5, dtype=np.float32), 16000)
    state = await manager.clone_voice("fake-tts", clip)
    assert state.endswith(b"fake-voice-state")
    assert manager.status()[0]["active"] == 0


async def test_transcribe_holds_the_slot_until_segments_are_done() -> None:
    manager = make_manager(FakeSTTEngine("First one. Second one."), max_queue=0)
    clip = AudioClip(np.zeros(32000, dtype=np.float32), 16000)
    info, segments = await manager.transcribe("fake-stt", clip, TranscriptionOptions())
    assert (info.language, info.duration) == ("en", 2.0)
    assert manager.status()[0]["active"] == 1
    texts = [segment.text async for segment in segments]
    assert texts == ["First one.", "Second one."]
    assert manager.status()[0]["active"] == 0


async def test_transcribe_slot_is_freed_by_aclose_even_before_iteration() -> None:
    manager = make_manager(FakeSTTEngine(), max_queue=0)
    clip = AudioClip(np.zeros(16000, dtype=np.float32), 16000)
    _, segments = await manager.transcribe("fake-stt", clip, TranscriptionOptions())
    with pytest.raises(Overloaded):
        await manager.transcribe("fake-stt", clip, TranscriptionOptions())
    await segments.aclose()
    assert manager.status()[0]["active"] == 0
    _, again = await manager.transcribe("fake-stt", clip, TranscriptionOptions())
    await again.aclose()


async def test_transcribe_slot_comes_back_when_segments_are_dropped() -> None:
    manager = make_manager(FakeSTTEngine(), max_queue=0)
    clip = AudioClip(np.zeros(16000, dtype=np.float32), 16000)
    _, segments = await manager.transcribe("fake-stt", clip, TranscriptionOptions())
    del segments
    gc.collect()
    await asyncio.sleep(0)
    assert manager.status()[0]["active"] == 0


async def test_chat_stream_and_count_tokens() -> None:
    manager = make_manager(FakeChatEngine())
    request = ChatRequest((ChatMessage("user", "hello there world"),))
    assert await manager.count_tokens("fake-chat", request) == 7
    deltas = [d async for d in manager.chat_stream("fake-chat", request)]
    assert "".join(d.text for d in deltas) == "world there hello"
    assert deltas[-1].finish_reason == "stop"
    assert manager.status()[0] == {
        "name": "fake-chat",
        "kind": "chat",
        "loaded": True,
        "active": 0,
        "waiting": 0,
        "limit": 1,
    }


# ---------------------------------------------------------------- the thread adapter


async def test_run_in_thread_runs_off_the_loop() -> None:
    assert await run_in_thread(threading.current_thread) is not threading.main_thread()
    assert await run_in_thread(pow, 2, 10) == 1024


async def test_iterate_in_thread_closes_the_generator_in_a_thread() -> None:
    events: list[tuple[str, bool]] = []

    def numbers() -> Iterator[int]:
        try:
            for i in range(100):
                events.append(("item", threading.current_thread() is threading.main_thread()))
                yield i
        finally:
            events.append(("closed", threading.current_thread() is threading.main_thread()))

    async with aclosing(iterate_in_thread(numbers)) as stream:
        assert [await anext(stream) for _ in range(3)] == [0, 1, 2]
    assert events[-1] == ("closed", False)
    assert all(not on_main for _, on_main in events)
    assert len(events) == 4


async def test_iterate_in_thread_propagates_errors() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise KeyError("x")

    with pytest.raises(KeyError):
        [item async for item in iterate_in_thread(failing)]


async def test_a_cancelled_call_waits_for_its_thread_then_times_out() -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await run_in_thread(slow)
    assert finished.is_set()  # the thread was not abandoned while still running
    assert time.monotonic() - start >= 0.2


# ---------------------------------------------------------------- changing the engine set


def named(engine: CountingTTS, name: str) -> CountingTTS:
    engine.name = name  # type: ignore[misc]
    return engine


async def test_update_engines_adds_in_order_and_keeps_the_served_ones() -> None:
    kept, added = named(CountingTTS(), "kept"), named(CountingTTS(), "added")
    manager = make_manager(kept)
    await collect(manager.stream_tts("kept", SynthesisRequest(TEXT)))
    changes = await manager.update_engines([added, kept])
    assert (changes.added, changes.removed) == (("added",), ())
    assert [h.name for h in manager.tts_handles()] == ["added", "kept"]
    assert kept.loaded and kept.loads == 1  # the same object, still loaded
    assert not added.loaded  # new engines load on first use
    await collect(manager.stream_tts("added", SynthesisRequest(TEXT)))
    assert added.loads == 1
    assert not await manager.update_engines([added, kept])


async def test_a_removed_engine_leaves_lookups_at_once_and_unloads_when_idle() -> None:
    gone, stays = named(CountingTTS(delay=0.01), "gone"), named(CountingTTS(), "stays")
    manager = EngineManager([gone, stays], EngineSettings(idle_unload_seconds=0))
    async with aclosing(manager.stream_tts("gone", SynthesisRequest(LONG_TEXT))) as stream:
        await anext(stream)
        changes = await manager.update_engines([stays])
        assert changes.removed == ("gone",)
        with pytest.raises(InvalidRequest, match="Model 'gone' not found"):
            manager.tts_handle("gone")
        assert gone.loaded  # its running work finishes on the slot it holds
        rest = await collect(stream)
    assert rest
    assert await manager.unload_retired() == ["gone"]
    assert (gone.loaded, gone.unloads) == (False, 1)
    assert await manager.unload_retired() == []


async def test_an_engine_replaced_under_its_name_serves_the_new_object() -> None:
    old, new = CountingTTS(), CountingTTS()
    manager = make_manager(old)
    await speak(manager)
    changes = await manager.update_engines([new])
    assert (changes.added, changes.removed) == (("fake-tts",), ("fake-tts",))
    assert manager.tts("fake-tts") is new
    assert (old.loaded, old.unloads) == (False, 1)  # idle: unloaded at once
    await speak(manager)
    assert new.loads == 1


async def test_close_unloads_retired_engines_too() -> None:
    gone = CountingTTS(delay=0.01)
    manager = make_manager(gone)
    async with aclosing(manager.stream_tts("fake-tts", SynthesisRequest(LONG_TEXT))) as stream:
        await anext(stream)
        await manager.update_engines([])
        assert manager.tts_handles() == []
    await manager.close()
    assert gone.unloads == 1


class FakeSTTWithoutWordTimes(FakeSTTEngine):
    """A fake recogniser that gives no word timestamps."""

    name = "fake-stt-no-words"

    def capabilities(self) -> STTCapabilities:
        return replace(super().capabilities(), word_timestamps=False)


def test_a_stream_opens_over_batch_decodes_only_with_word_timestamps() -> None:
    manager = EngineManager([FakeSTTEngine(), FakeSTTWithoutWordTimes()], EngineSettings())
    assert isinstance(manager.open_stt_stream("fake-stt", TranscriptionOptions()), AgreementStream)
    with pytest.raises(Unsupported, match="word timestamps, such as faster-whisper"):
        manager.open_stt_stream("fake-stt-no-words", TranscriptionOptions())
