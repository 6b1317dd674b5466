"""A GIL-holding engine never freezes the event loop (#14 item 5): pocketsphinx, the default
recogniser without models, runs in a worker process, so ``/health`` answers promptly while it
transcribes at its concurrency limit with more requests queued. (Not a timing benchmark: the
bound is loose; ``bench/soak.py`` measures the p99.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.support import speech_data
from tests.support.live_server import run_server
from voxserve.engines.fake import FakeTTSEngine
from voxserve.engines.worker_process import ProcessSTTEngine
from voxserve.settings import Settings

JFK = "faster_whisper_tests/jfk.flac"


def test_health_answers_while_pocketsphinx_transcribes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    engine = ProcessSTTEngine("voxserve.engines.pocketsphinx:PocketsphinxEngine")
    audio = speech_data.clip(JFK).path.read_bytes()

    async def run(url: str) -> tuple[list[httpx.Response], list[float]]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            files = {"file": ("jfk.flac", audio, "audio/flac")}
            work = [
                asyncio.create_task(
                    client.post(
                        "/v1/audio/transcriptions", files=files, data={"model": "pocketsphinx"}
                    )
                )
                for _ in range(2)
            ]
            latencies = []
            while not all(task.done() for task in work):
                started = time.perf_counter()
                assert (await client.get("/health")).status_code == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)
            return await asyncio.gather(*work), latencies

    with run_server(settings, [FakeTTSEngine(), engine]) as server:
        answers, latencies = asyncio.run(run(server.url))
    assert [a.status_code for a in answers] == [200, 200]
    assert all("fellow" in a.json()["text"] for a in answers)
    assert len(latencies) > 20  # /health was asked all along the transcriptions
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
