"""Pool routing overhead (issue #12): the same requests to fake OpenAI-compatible servers through
a plain remote engine (``direct``: one server) and through a pooled engine (``pool-1``: a pool of
that one server; ``pool-2``: that server and a second one), with p50/p95 latency of each.

The backends are the test suite's fake servers (``tests/support/openai_stub_server.py``) in this
process: they answer at once, so the figures are the client side's cost, and the difference
between ``direct`` and ``pool-*`` is what routing adds (a lock, a choice, a lease). Two kinds:
``speech`` (a streamed ``/audio/speech`` body, 0.4 s of PCM) and ``transcription`` (a 1 s WAV
upload answered with ``verbose_json``). Modes alternate request by request so that machine load
hits every mode alike; the routing alone (no network) is timed too. Target: the pool adds under
1 ms at p50.

    .venv/bin/python bench/pool.py [--requests 200] [--repeat 3] [--warmup 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    REPO_ROOT,
    add_common_options,
    fmt,
    machine_info,
    markdown_table,
    percentile,
    rotated,
    verdict,
    write_results,
)

from voxserve.audio.types import AudioClip
from voxserve.engines.pool import Backend, BackendPool
from voxserve.engines.protocol import SynthesisRequest, TranscriptionOptions
from voxserve.engines.remote_http import RemoteServer
from voxserve.engines.remote_pool import PooledSTTEngine, PooledTTSEngine
from voxserve.engines.remote_stt import RemoteSTTEngine
from voxserve.engines.remote_tts import RemoteTTSEngine

sys.path.insert(0, str(REPO_ROOT))
from tests.support.openai_stub_server import OpenAIStubServer

TARGET_P50_MS = 1.0
TEXT = "Twenty characters."
"""0.36 s of the fake's speech."""
Call = Callable[[], object]


def _pool(make: Callable[[str], Any], urls: list[str]) -> BackendPool[Any]:
    backends = [Backend(url, make(url), 8, RemoteServer(url, timeout=2.0)) for url in urls]
    return BackendPool(backends, label="bench", retry_after=1)


def _calls(urls: list[str]) -> dict[str, dict[str, Call]]:
    """Per kind, per mode: one request, run to its end."""
    clip = AudioClip(np.zeros(16000, dtype=np.float32), 16000)
    options = TranscriptionOptions()
    request = SynthesisRequest(TEXT, voice="alice")

    def tts(url: str) -> RemoteTTSEngine:
        return RemoteTTSEngine(url, "m", voices=["alice"])

    def stt(url: str) -> RemoteSTTEngine:
        return RemoteSTTEngine(url, "m")

    speech: dict[str, Any] = {
        "direct": tts(urls[0]),
        "pool-1": PooledTTSEngine(_pool(tts, urls[:1])),
        "pool-2": PooledTTSEngine(_pool(tts, urls)),
    }
    transcription: dict[str, Any] = {
        "direct": stt(urls[0]),
        "pool-1": PooledSTTEngine(_pool(stt, urls[:1])),
        "pool-2": PooledSTTEngine(_pool(stt, urls)),
    }
    return {
        "speech": {
            mode: (lambda e=engine: sum(len(c) for c in e.synthesize(request)))
            for mode, engine in speech.items()
        },
        "transcription": {
            mode: (lambda e=engine: list(e.transcribe(clip, options)[1]))
            for mode, engine in transcription.items()
        },
    }


def _measure(
    calls: dict[str, dict[str, Call]], requests: int, repeat: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Per kind, per mode: each request's seconds. Modes alternate request by request (in a
    rotating order), so a change in machine load hits every mode alike."""
    samples: dict[str, dict[str, list[float]]] = {k: {m: [] for m in calls[k]} for k in calls}
    for round_ in range(warmup + repeat):
        for kind, modes in calls.items():
            for i in range(requests):
                for mode in rotated(list(modes), i + round_):
                    started = time.perf_counter()
                    modes[mode]()
                    if round_ >= warmup:
                        samples[kind][mode].append(time.perf_counter() - started)
    return samples


def _routing_only(calls: int = 20000) -> dict[str, float]:
    """Microseconds one routed call costs with no network: lease, choice, release."""
    pool = _pool(lambda url: url, ["http://a/v1", "http://b/v1"])
    started = time.perf_counter()
    for _ in range(calls):
        pool.run(lambda engine: engine)
    run_us = (time.perf_counter() - started) / calls * 1e6
    started = time.perf_counter()
    for _ in range(calls):
        for _item in pool.stream(lambda engine: iter((engine, engine))):
            pass
    return {"run_us": run_us, "stream_us": (time.perf_counter() - started) / calls * 1e6}


def _report(
    samples: dict[str, dict[str, list[float]]], routing: dict[str, float]
) -> tuple[dict[str, Any], str]:
    rows, summary = [], {"routing_only": routing}
    for kind, modes in samples.items():
        direct = percentile(modes["direct"], 50) * 1000
        for mode, times in modes.items():
            p50, p95 = percentile(times, 50) * 1000, percentile(times, 95) * 1000
            added = p50 - direct
            summary[f"{kind}/{mode}"] = {"p50_ms": p50, "p95_ms": p95, "added_p50_ms": added}
            ok = mode == "direct" or added < TARGET_P50_MS
            rows.append([kind, mode, fmt(p50, 2), fmt(p95, 2), fmt(added, 3), verdict(ok)])
    table = markdown_table(
        ["kind", "mode", "p50 ms", "p95 ms", "added p50 ms", f"< {TARGET_P50_MS} ms"], rows
    )
    routing_line = (
        f"Routing alone (no network, in-process): {routing['run_us']:.1f} µs per call, "
        f"{routing['stream_us']:.1f} µs per stream."
    )
    return summary, "# Pool routing overhead\n\n" + table + "\n\n" + routing_line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_options(parser, repeat=3, warmup=1)
    parser.add_argument("--requests", type=int, default=200, help="requests per pass and mode")
    args = parser.parse_args()
    with ExitStack() as stack:
        fakes = [stack.enter_context(OpenAIStubServer(voices=["alice"])) for _ in range(2)]
        samples = _measure(
            _calls([f.base_url for f in fakes]), args.requests, args.repeat, args.warmup
        )
    summary, markdown = _report(samples, _routing_only())
    data = {
        "summary": summary,
        "samples_s": samples,
        "requests": args.requests,
        "repeat": args.repeat,
        "machine": machine_info(["httpx"]),
    }
    write_results(Path(args.out), "pool", data, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
