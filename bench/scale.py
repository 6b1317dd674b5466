"""Scale-out benchmark: blob store throughput (local folder vs S3), and requests per second with
p50/p95 latency for speech and transcription against one replica vs two replicas sharing one
PostgreSQL and one S3 bucket.

Everything runs on this machine: PostgreSQL is a throwaway cluster and S3 is an S3 emulator
(moto's server), both from the test support modules (``tests/support``), and the replicas are
real ``voxserve serve`` processes on the built-in engines (espeak-ng, PocketSphinx: no model
weights needed). Two replicas share the same cores here, so the figure that counts is the
overhead of the shared storage: two replicas must not be slower than one in total throughput.

To tell that overhead from CPU contention, each pass is measured beside the raw engines on the
same inputs (``x raw``: the replicas' requests per second over the engine's, measured just
before, so the machine's changing load cancels out), with the CPU seconds per request of each
process tree (replicas, PostgreSQL, this process with the S3 emulator thread) and
PostgreSQL's transactions per request (less the background jobs', measured idle:
``scale_profile.py``). Same CPU per request with two replicas as with one means no storage
overhead from scaling out; lower throughput then is cores shared with other work.

    .venv/bin/python bench/scale.py                 # ~8 min on 2 cores: scale.json, scale.md
    .venv/bin/python bench/scale.py --requests 64 --stt-requests 8 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# The throwaway PostgreSQL and the S3 emulator come from the test support modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    DEFAULT_OUT,
    Server,
    load_snapshot,
    machine_info,
    percentile,
    running_server,
    write_results,
)
from scale_profile import Meter, idle_profile, make_raw_engines, postmaster_pid, raw_pass
from scale_report import markdown
from tests.support.postgres import create_database, postgres_server
from tests.support.s3_emulator import S3Emulator, s3_emulator

from voxserve.audio.decode import decode
from voxserve.engines.protocol import STTEngine, TTSEngine
from voxserve.storage.blobs_local import LocalBlobStore
from voxserve.storage.blobs_s3 import open_s3_blobs
from voxserve.storage.protocol import BlobStore

SPEECH_TEXT = "The quick brown fox jumps over the lazy dog, and then it runs away."
VOICE = "espeak:en-us"
"""espeak-ng's default English voice (``en-us`` to the raw engine)."""


# --------------------------------------------------------------------------- blobs


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def blob_pass(store: BlobStore, count: int, size: int, big: int) -> dict[str, float]:
    """Put and get ``count`` blobs of ``size`` bytes, then stream one of ``big`` bytes."""
    payload = os.urandom(size)
    started = time.perf_counter()
    for n in range(count):
        await store.put(f"bench/small/{n}", payload)
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    for n in range(count):
        await store.get(f"bench/small/{n}")
    get_s = time.perf_counter() - started
    large = os.urandom(big)
    started = time.perf_counter()
    await store.put_stream("bench/large", _chunks(large, 1 << 20))
    stream_put_s = time.perf_counter() - started
    started = time.perf_counter()
    received = sum([len(chunk) async for chunk in store.stream("bench/large")])
    stream_get_s = time.perf_counter() - started
    assert received == big
    mb = count * size / 1e6
    return {
        "put_per_s": count / put_s,
        "get_per_s": count / get_s,
        "put_mb_s": mb / put_s,
        "get_mb_s": mb / get_s,
        "stream_put_mb_s": big / 1e6 / stream_put_s,
        "stream_get_mb_s": big / 1e6 / stream_get_s,
    }


async def blob_benchmark(s3: S3Emulator, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voxserve-bench-blobs-") as tmp:
        local = LocalBlobStore(Path(tmp))
        results["local"] = await blob_pass(local, args.blobs, args.blob_size, args.big_blob)
    url = f"s3://voxserve/bench-{uuid.uuid4().hex[:8]}"
    async with open_s3_blobs(url, endpoint_url=s3.endpoint_url, region=s3.region) as remote:
        results["s3"] = await blob_pass(remote, args.blobs, args.blob_size, args.big_blob)
    return results


# --------------------------------------------------------------------------- replicas


@contextmanager
def replicas(count: int, env: dict[str, str], models: Path) -> Iterator[list[Server]]:
    with ExitStack() as stack:
        yield [stack.enter_context(running_server(models, env)) for _ in range(count)]


async def speech_wav(url: str, voice: str) -> bytes:
    """Speech from the server (Mistral's shape: base64 audio), to transcribe afterwards."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        response = await http.post(
            "/v1/audio/speech",
            json={"input": SPEECH_TEXT, "voice_id": voice, "response_format": "wav"},
        )
    response.raise_for_status()
    return base64.b64decode(response.json()["audio_data"])


async def load_pass(
    urls: Sequence[str], kind: str, voice: str, wav: bytes, requests: int, clients: int
) -> dict[str, Any]:
    """``requests`` requests over ``clients`` concurrent clients, round-robin over ``urls``."""
    targets = itertools.cycle(urls)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(next(targets))
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures
        async with httpx.AsyncClient(timeout=300) as http:
            while not queue.empty():
                url = queue.get_nowait()
                started = time.perf_counter()
                response = await _request(http, url, kind, voice, wav)
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    return {
        "requests": requests,
        "failures": failures,
        "wall_s": wall,
        "rps": requests / wall,
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "latencies_s": latencies,
    }


async def _request(
    http: httpx.AsyncClient, url: str, kind: str, voice: str, wav: bytes
) -> httpx.Response:
    if kind == "speech":
        body = {"input": SPEECH_TEXT, "voice_id": voice, "response_format": "wav"}
        return await http.post(f"{url}/v1/audio/speech", json=body)
    files = {"file": ("speech.wav", wav, "audio/wav")}
    return await http.post(
        f"{url}/v1/audio/transcriptions", data={"model": "whisper-1"}, files=files
    )


@dataclass(frozen=True)
class Inputs:
    """The same requests for the replicas and the raw engines."""

    voice: str
    wav: bytes
    raw: tuple[TTSEngine, STTEngine]

    def raw_pass(self, kind: str, requests: int) -> dict[str, Any]:
        tts, stt = self.raw
        voice = self.voice.split(":", 1)[1]  # engine-local id
        audio = decode(self.wav, sample_rate=16000)
        return raw_pass(tts, stt, kind, SPEECH_TEXT, voice, audio, requests)


def measured_pass(
    urls: Sequence[str], kind: str, inputs: Inputs, args: argparse.Namespace, meter: Meter
) -> dict[str, Any]:
    """The raw engine, then the replicas, on the same requests: the replicas' throughput as a
    ratio of the engine's measured just before (the machine's load changes from minute to
    minute), with CPU and PostgreSQL transactions per request."""
    speech = kind == "speech"
    raw = inputs.raw_pass(kind, args.raw_requests if speech else max(2, args.stt_requests // 2))
    requests = args.requests if speech else args.stt_requests
    measured: dict[str, Any] = {}
    with meter.measure(measured):
        found = asyncio.run(load_pass(urls, kind, inputs.voice, inputs.wav, requests, args.clients))
    return {**found, **measured, "raw": raw, "ratio_to_raw": found["rps"] / raw["rps"]}


def replica_benchmark(
    urls: Sequence[str], args: argparse.Namespace, inputs: Inputs, meter: Meter
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kind in ("speech", "transcription"):
        asyncio.run(load_pass(urls, kind, inputs.voice, inputs.wav, len(urls) * 2, args.clients))
        found[kind] = [measured_pass(urls, kind, inputs, args, meter) for _ in range(args.repeat)]
    found["idle"] = idle_profile(meter, args.idle_seconds)
    return found


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_emulator())
        s3.create_bucket("voxserve")
        database = asyncio.run(create_database(stack.enter_context(postgres_server())))
        postgres = postmaster_pid(database)
        data: dict[str, Any] = {"machine": machine_info(["aiobotocore", "moto"])}
        data["load_before"] = load_snapshot()
        data["blobs"] = asyncio.run(blob_benchmark(s3, args))
        env = {
            **s3.client_env(),
            "VOXSERVE_DATABASE_URL": database,
            "VOXSERVE_BLOBS__URL": f"s3://voxserve/replicas-{uuid.uuid4().hex[:8]}",
            "VOXSERVE_BLOBS__ENDPOINT_URL": s3.endpoint_url,
        }
        models = Path(tempfile.mkdtemp(prefix="voxserve-bench-nomodels-"))  # built-ins only
        raw = make_raw_engines()
        data["replicas"] = {}
        for count in (1, 2):
            with replicas(count, env, models) as servers:
                urls = [server.url for server in servers]
                inputs = Inputs(VOICE, asyncio.run(speech_wav(urls[0], VOICE)), raw)
                meter = Meter(database, [server.pid for server in servers], postgres)
                data["replicas"][str(count)] = replica_benchmark(urls, args, inputs, meter)
        data["load_after"] = load_snapshot()
        return data


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for JSON and .md")
    parser.add_argument("--requests", type=int, default=32, help="speech requests per pass")
    parser.add_argument("--stt-requests", type=int, default=6, help="transcriptions per pass")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--blobs", type=int, default=200, help="small blobs put and got")
    parser.add_argument("--blob-size", type=int, default=256 * 1024, help="bytes per small blob")
    parser.add_argument("--big-blob", type=int, default=32 * 1024 * 1024, help="streamed blob")
    parser.add_argument("--repeat", type=int, default=3, help="measured passes per kind")
    parser.add_argument("--raw-requests", type=int, default=16, help="raw speech calls per pass")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle measurement")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    write_results(args.out, "scale", data, markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
