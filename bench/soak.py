"""Soak: a bounded mixed load on loopback for a fixed time (#14 benchmark).

The real server runs in a subprocess (``voxserve serve``, a fresh data folder, by default an
empty models folder: the built-in espeak and pocketsphinx engines, pocketsphinx in its worker
process). Client loops run side by side for ``--seconds``: streamed speech read to the end,
streamed speech the client hangs up on after two deltas, transcriptions, voice creates (then
deleted), file uploads and downloads, a few decode bombs (hours of silent FLAC as a voice sample
and for transcription), and ``/health`` every 50 ms. Three speech loops keep espeak and two
transcription loops keep pocketsphinx at their concurrency limit (1 each): ``/ready`` is sampled
every 0.5 s and the share of samples with each engine at its limit is reported. It reports
errors by kind, 429s, latency p50/p99 of each kind and of ``/health``, the server's peak memory
(its process and its worker processes), and the credits charged against the characters
delivered. ``/health`` is timed from
a separate process, so the load generator's own stalls are not counted as the server's.

    .venv/bin/python bench/soak.py --seconds 30          # writes bench/results/soak.{json,md}
    .venv/bin/python bench/soak.py --seconds 30 --idle   # no load: the /health floor
    .venv/bin/python bench/soak.py --profile             # py-spy stacks of the server too
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DEFAULT_OUT,
    fmt,
    machine_info,
    markdown_table,
    percentile,
    profiling,
    running_server,
    write_results,
)

SENTENCES = [
    "The train left the station early in the morning.",
    "Passengers read their papers and watched the fields go by.",
    "A conductor walked the aisle and checked every ticket.",
    "By noon the hills had turned to mountains.",
]
VOICE = "espeak:en"


@dataclass
class Tally:
    """Everything the load loops observed."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    completed_characters: int = 0
    """Characters of the speech streams read to the end."""
    hung_up_characters: int = 0
    """Characters of the texts of streams the client left after two deltas."""
    hung_up_floor: int = 0
    """Characters of their first sentences (received, so at least charged)."""
    ready_samples: int = 0
    """``/ready`` answers sampled."""
    at_limit: Counter[str] = field(default_factory=Counter)
    """Per engine: samples where it worked at its concurrency limit."""

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[kind][status] += 1
        self.latencies[kind].append(seconds)


def silent_flac(hours: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    minute = np.zeros((1, rate * 60), dtype=np.int16)
    with av.open(buf, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        for i in range(round(hours * 60)):
            frame = av.AudioFrame.from_ndarray(minute, format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, i * rate * 60
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def text_for(rng: random.Random) -> str:
    return " ".join(rng.sample(SENTENCES, k=rng.randint(2, 4)))


async def timed(
    tally: Tally, kind: str, call: Callable[[], Awaitable[int]], *, expected: tuple[int, ...] = ()
) -> None:
    started = time.perf_counter()
    try:
        status = await call()
    except httpx.HTTPError as exc:
        tally.errors[f"{kind} {type(exc).__name__}"] += 1
        return
    tally.record(kind, status, time.perf_counter() - started)
    if status not in (expected or (200,)) and status != 429:
        tally.errors[f"{kind} {status}"] += 1


async def speech_stream(client: httpx.AsyncClient, tally: Tally, text: str, hang_up: bool) -> int:
    body = {"input": text, "voice_id": VOICE, "stream": True, "response_format": "pcm"}
    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code
        deltas = 0
        async for line in response.aiter_lines():
            deltas += line.startswith("event: speech.audio.delta")
            if hang_up and deltas == 2:
                tally.hung_up_characters += len(text)
                tally.hung_up_floor += len(text.split(". ")[0]) + 1
                return 499
        tally.completed_characters += len(text)
        return 200


async def transcription(client: httpx.AsyncClient, audio: bytes) -> int:
    files = {"file": ("speech.wav", audio, "audio/wav")}
    response = await client.post(
        "/v1/audio/transcriptions", files=files, data={"model": "pocketsphinx"}
    )
    return response.status_code


async def voice_create(client: httpx.AsyncClient, sample: str, name: str) -> int:
    """``sample`` is base64 already: encoding megabytes here would stall this client's loop."""
    body = {"name": name, "sample_audio": sample}
    response = await client.post("/v1/audio/voices", json=body)
    if response.status_code == 200:
        await client.delete(f"/v1/audio/voices/{response.json()['id']}")
    return response.status_code


async def file_roundtrip(client: httpx.AsyncClient, rng: random.Random) -> int:
    data = rng.randbytes(rng.randint(1_000, 2_000_000))
    uploaded = await client.post("/v1/files", files={"file": ("blob.bin", data)})
    if uploaded.status_code != 200:
        return uploaded.status_code
    file_id = uploaded.json()["id"]
    downloaded = await client.get(f"/v1/files/{file_id}/content")
    await client.delete(f"/v1/files/{file_id}")
    return downloaded.status_code if downloaded.content == data else 590


async def bomb(client: httpx.AsyncClient, data: bytes, encoded: str, as_voice: bool) -> int:
    if as_voice:
        return await voice_create(client, encoded, "bomb")
    files = {"file": ("bomb.flac", data, "audio/flac")}
    response = await client.post(
        "/v1/audio/transcriptions", files=files, data={"model": "pocketsphinx"}
    )
    return response.status_code


HEALTH_INTERVAL = 0.05


def probe_health(url: str, seconds: float, interval: float) -> list[tuple[int, float]]:
    """``GET /health`` every ``interval`` for ``seconds`` (in its own process): (status, s)."""
    results: list[tuple[int, float]] = []
    until = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                status = client.get("/health").status_code
            except httpx.HTTPError:
                status = 599
            results.append((status, time.perf_counter() - started))
            time.sleep(interval)
    return results


async def loop(until: float, pause: float, work: Callable[[], Awaitable[None]]) -> None:
    while time.monotonic() < until:
        await work()
        await asyncio.sleep(pause)


def peak_memory_mib(pid: int) -> dict[str, float]:
    """VmHWM (peak RSS) of the server and of each of its child processes."""
    peaks: dict[str, float] = {}
    for proc in [pid, *children(pid)]:
        try:
            status = Path(f"/proc/{proc}/status").read_text()
        except OSError:
            continue
        line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
        if line:
            peaks[str(proc)] = int(line.split()[1]) / 1024
    return peaks


def children(pid: int) -> list[int]:
    """Child processes of every thread of ``pid`` (workers are started from worker threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


async def engines_at_limit(client: httpx.AsyncClient, tally: Tally) -> None:
    """Sample ``/ready``: which engines work at their concurrency limit now."""
    try:
        engines = (await client.get("/ready")).json()["engines"]
    except (httpx.HTTPError, ValueError, KeyError):
        return
    tally.ready_samples += 1
    for engine in engines:
        tally.at_limit[engine["name"]] += engine["active"] >= engine["limit"]


async def run_load(
    url: str, seconds: float, seed: int, pid: int, *, idle: bool = False, speech_loops: int = 2
) -> dict[str, Any]:
    """The mixed load (or, ``idle``, none: only the probes, for the floor); ``speech_loops``
    streams read to the end side by side (besides the one that hangs up)."""
    rng = random.Random(seed)
    tally = Tally()
    bomb_data = silent_flac(10)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        spoken = await client.post(
            "/v1/audio/speech", json={"input": " ".join(SENTENCES), "voice_id": VOICE}
        )
        speech_b64 = spoken.json()["audio_data"]
        speech_wav = base64.b64decode(speech_b64)
        bomb_b64 = base64.b64encode(bomb_data).decode()
        until = time.monotonic() + seconds
        peaks: list[dict[str, float]] = []
        # /health is timed from a process of its own: in this one, the load's own work (JSON
        # bodies of megabytes, comparing downloads) holds this loop and the GIL, and its stalls
        # were counted as the server's (~300 ms stalls measured with PYTHONASYNCIODEBUG).
        probe = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        health = asyncio.get_running_loop().run_in_executor(
            probe, probe_health, url, seconds, HEALTH_INTERVAL
        )

        async def memory() -> None:
            peaks.append(peak_memory_mib(pid))

        jobs = [loop(until, 1.0, memory), loop(until, 0.5, lambda: engines_at_limit(client, tally))]
        jobs += (
            []
            if idle
            else [
                *(
                    loop(
                        until,
                        0.1,
                        lambda: timed(
                            tally,
                            "speech stream",
                            lambda: speech_stream(client, tally, text_for(rng), False),
                        ),
                    )
                    for _ in range(speech_loops)
                ),
                loop(
                    until,
                    0.3,
                    lambda: timed(
                        tally,
                        "speech hang-up",
                        lambda: speech_stream(client, tally, text_for(rng), True),
                        expected=(499,),
                    ),
                ),
                *(
                    loop(
                        until,
                        0.2,
                        lambda: timed(
                            tally,
                            "transcription",
                            lambda: transcription(client, speech_wav),
                            expected=(200,),
                        ),
                    )
                    for _ in range(2)
                ),
                loop(
                    until,
                    0.5,
                    lambda: timed(
                        tally,
                        "voice create",
                        lambda: voice_create(client, speech_b64, "soak"),
                        expected=(200,),
                    ),
                ),
                loop(
                    until,
                    0.2,
                    lambda: timed(
                        tally, "file upload", lambda: file_roundtrip(client, rng), expected=(200,)
                    ),
                ),
                loop(
                    until,
                    2.0,
                    lambda: timed(
                        tally,
                        "decode bomb",
                        lambda: bomb(client, bomb_data, bomb_b64, rng.random() < 0.5),
                        expected=(413, 422),
                    ),
                ),
            ]
        )
        started = time.monotonic()
        await asyncio.gather(*jobs)
        wall = time.monotonic() - started
        for status, seconds_taken in await health:
            tally.record("/health", status, seconds_taken)
        probe.shutdown()
        await asyncio.sleep(1.0)  # the last hung-up streams leave their usage records
        usage = (await client.get("/v1/usage", params={"limit": 1})).json()
    result = summarise(tally, usage, peaks, wall, len(bomb_data))
    result["engines_at_limit"] = {
        name: count / max(tally.ready_samples, 1) for name, count in tally.at_limit.items()
    }
    return result


def summarise(
    tally: Tally, usage: dict[str, Any], peaks: list[dict[str, float]], wall: float, bomb_bytes: int
) -> dict[str, Any]:
    kinds = {}
    for kind, values in tally.latencies.items():
        kinds[kind] = {
            "requests": len(values),
            "p50_ms": percentile(values, 50) * 1000,
            "p99_ms": percentile(values, 99) * 1000,
            "statuses": dict(tally.statuses[kind]),
            "429": tally.statuses[kind][429],
        }
    last: dict[str, float] = {}
    for sample in peaks:  # a worker seen once keeps its peak in the report
        last.update(sample)
    charged = int(usage["totals"]["credits"])
    return {
        "wall_seconds": wall,
        "kinds": kinds,
        "errors": dict(tally.errors),
        "peak_memory_mib": last,
        "bomb_bytes": bomb_bytes,
        "credits": {
            "charged": charged,
            "completed_stream_characters": tally.completed_characters,
            "hung_up_text_characters": tally.hung_up_characters,
            "hung_up_first_sentence_characters": tally.hung_up_floor,
            "charged_for_hung_up": charged - tally.completed_characters,
        },
    }


def markdown(result: dict[str, Any], seconds: float) -> str:
    rows = [
        [
            kind,
            str(k["requests"]),
            fmt(k["p50_ms"]),
            fmt(k["p99_ms"]),
            str(k["429"]),
            " ".join(f"{s}:{n}" for s, n in sorted(k["statuses"].items())),
        ]
        for kind, k in sorted(result["kinds"].items())
    ]
    table = markdown_table(["kind", "requests", "p50 ms", "p99 ms", "429s", "statuses"], rows)
    credits = result["credits"]
    memory = ", ".join(f"pid {p}: {m:.0f} MiB" for p, m in result["peak_memory_mib"].items())
    errors = ", ".join(f"{k}: {n}" for k, n in sorted(result["errors"].items())) or "none"
    busy = ", ".join(f"{k} {v:.0%}" for k, v in sorted(result["engines_at_limit"].items()))
    return "\n".join(
        [
            f"## Soak ({seconds:.0f} s of {'no load' if result.get('idle') else 'mixed load'}, "
            "built-in engines)",
            "",
            table,
            "",
            f"- errors by kind: {errors}",
            f"- share of /ready samples with the engine at its concurrency limit: {busy}",
            f"- peak memory (VmHWM): {memory}",
            f"- decode bombs: {result['bomb_bytes'] / 1e6:.1f} MB FLAC of 10 h silence each",
            f"- credits charged {credits['charged']}: {credits['completed_stream_characters']} "
            f"for streams read to the end (their characters) + "
            f"{credits['charged_for_hung_up']} for hung-up streams (their texts had "
            f"{credits['hung_up_text_characters']} characters, their first sentences "
            f"{credits['hung_up_first_sentence_characters']})",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--models", type=Path, default=None, help="models folder (default empty)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with py-spy (must be installed) into the out folder",
    )
    parser.add_argument(
        "--idle", action="store_true", help="no load, only the probes: the /health floor"
    )
    parser.add_argument(
        "--saturate",
        action="store_true",
        help="more speech streams (5), so espeak never waits for work: every engine at its "
        "concurrency limit throughout (the default mix leaves espeak idle a third of the time)",
    )
    parser.add_argument("--server-log", type=Path, help="keep the server's log here")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="voxserve-soak-models-") as empty,
        running_server(args.models or Path(empty)) as server,
        profiling(server, args.out, "soak", args.profile),
    ):
        result = asyncio.run(
            run_load(
                server.url,
                args.seconds,
                args.seed,
                server.pid,
                idle=args.idle,
                speech_loops=5 if args.saturate else 2,
            )
        )
        if args.server_log:
            shutil.copyfile(server.log_path, args.server_log)
    result["machine"] = machine_info(["voxserve", "httpx", "av"])
    result["seconds"] = args.seconds
    result["idle"] = args.idle
    result["saturate"] = args.saturate
    write_results(args.out, "soak", result, markdown(result, args.seconds))
    json.dumps(result)  # every number is plain JSON


if __name__ == "__main__":
    main()
