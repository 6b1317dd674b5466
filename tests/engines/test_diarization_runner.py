"""The diarization runner's idle unloading (``engines.idle_unload_seconds``), with the fake
diarizer: unloaded once unused long enough, never while a call is admitted, loaded again by the
next call; and the server's background jobs run its unloader."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.fake_diarizer import FakeDiarizer
from voxserve.audio.types import AudioClip
from voxserve.bootstrap import background_jobs, open_services
from voxserve.engines.diarization import DiarizationRunner
from voxserve.engines.fake import FakeSTTEngine
from voxserve.settings import Settings
from voxserve.storage.memory import create_memory_storage


def tone(seconds: float = 1.0, freq: float = 220.0) -> AudioClip:
    t = np.arange(round(seconds * 16000)) / 16000
    return AudioClip((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)


async def test_an_idle_diarizer_is_unloaded_and_loads_again_on_use() -> None:
    fake = FakeDiarizer()
    runner = DiarizationRunner(fake, idle_unload_seconds=10)
    assert not await runner.unload_idle()  # never loaded
    await runner.diarize(tone())
    now = time.monotonic()
    assert not await runner.unload_idle(now + 5)
    assert await runner.unload_idle(now + 11)
    assert (fake.loads, fake.unloads, runner.loaded) == (1, 1, False)
    await runner.embed(tone())
    assert (fake.loads, runner.loaded) == (2, True)
    await runner.close()
    assert fake.unloads == 2


async def test_a_diarizer_with_a_call_admitted_is_not_unloaded() -> None:
    fake = FakeDiarizer()
    runner = DiarizationRunner(fake, idle_unload_seconds=10)
    await runner.diarize(tone())
    waiting = [asyncio.ensure_future(runner.diarize(tone(0.5))) for _ in range(2)]
    await asyncio.sleep(0)  # both admitted: one running in its thread, one waiting
    assert not await runner.unload_idle(time.monotonic() + 3600)
    await asyncio.gather(*waiting)
    assert (fake.unloads, fake.calls) == (0, 3)


async def test_zero_keeps_it_loaded() -> None:
    runner = DiarizationRunner(FakeDiarizer(), idle_unload_seconds=0)
    await runner.diarize(tone())
    assert not await runner.unload_idle(time.monotonic() + 1e9)
    await runner.run_unloader()  # returns at once: nothing to do


@pytest.mark.parametrize("idle", [0.0, 300.0])
async def test_the_server_unloads_its_diarizer_with_the_engines_setting(
    tmp_path: Path, idle: float
) -> None:
    settings = Settings(data_dir=tmp_path, engines={"idle_unload_seconds": idle})  # type: ignore[arg-type]
    engines = [FakeSTTEngine("hi"), FakeDiarizer()]
    storage = create_memory_storage()
    async with open_services(settings, engines=engines, storage=storage) as services:
        assert services.diarizer is not None
        assert services.diarizer.idle_unload_seconds == idle
        jobs = background_jobs(services)
        names = [job.cr_code.co_name for job in jobs]  # type: ignore[attr-defined]
        for job in jobs:
            job.close()
    assert names.count("run_unloader") == 2


async def test_voice_prints_are_remembered_for_the_last_clips_only() -> None:
    fake = FakeDiarizer()
    runner = DiarizationRunner(fake, embed_cache=1)
    low, high = tone(1.0, 220.0), tone(1.0, 440.0)
    first = await runner.embed(low)
    first[:] = 0.0  # the caller's copy: the remembered print is untouched
    assert (await runner.embed(AudioClip(low.samples.copy(), 16000))).any()
    assert fake.embeds == 1
    await runner.embed(high)  # evicts the 220 Hz print: one is kept
    await runner.embed(low)
    assert fake.embeds == 3
