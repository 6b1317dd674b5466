"""Speech benchmark (issue #3): time to first audio (TTFA) and real-time factor (RTF) through the
server against the raw engine called in-process on the same texts.

Modes, each with 1 and 4 concurrent clients:

- ``raw``: the engine in this process, built as the server builds it, one ``synthesize`` call per
  sentence (``split_sentences``, the server's splitting); TTFA is the first non-empty chunk.
- ``sse``: Mistral SSE (``stream: true``, ``response_format: pcm``); TTFA is the first
  ``speech.audio.delta`` event.
- ``audio``: OpenAI raw audio streaming (``stream_format: audio``, ``response_format: pcm``:
  16-bit at 24 kHz, so the server also resamples); TTFA is the first body bytes.

RTF is wall time over audio seconds. The modes are interleaved pass by pass (one mode later each
round) so that a change in machine load hits all of them alike. Targets: the server adds at most
10% to the throughput RTF (the best pass's wall time over all the audio made in it) and, with 1
client, 50 ms to the median TTFA; with 4 clients the median TTFA stays within 2x the 1-client
figure (the engine runs one synthesis at a time, sentence by sentence).

    .venv/bin/python bench/tts.py [--engine piper|espeak] [--repeat 3] [--warmup 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from common import (
    Batch,
    Server,
    add_common_options,
    cpu_seconds,
    fmt,
    load_snapshot,
    machine_info,
    markdown_table,
    percentile,
    profiling,
    ratio,
    rotated,
    running_server,
    verdict,
    write_results,
)

from voxserve.core.text import split_sentences
from voxserve.engines.protocol import SynthesisRequest, TTSEngine

TEXTS: dict[str, str] = {
    "short": (
        "Thank you for calling the city library. "
        "Our opening hours have changed for the summer season."
    ),
    "medium": (
        "The old lighthouse stood at the edge of the cliff for more than a century. "
        "Every night its beam swept across the dark water, warning ships away from the rocks. "
        "The keeper climbed the spiral stairs twice a day to trim the wick and polish the lens. "
        "In winter storms, spray rattled against the lantern room windows."
    ),
    "medium2": (
        "To reset your router, first unplug it from the wall and wait for thirty seconds. "
        "Then plug it back in and watch the lights on the front panel. "
        "When the internet light turns solid green, your connection is ready. "
        "If it keeps blinking orange, call our support line and have your account number ready."
    ),
    "long": (
        "The history of timekeeping is a story of ever finer divisions. "
        "Early farmers watched the sun and the seasons, and that was precise enough for planting "
        "and harvest. "
        "Sundials split the day into hours, but they were useless at night and under clouds. "
        "Water clocks filled that gap, dripping at a steady rate through a small hole in a "
        "stone vessel. "
        "In the middle ages, mechanical clocks appeared in church towers, driven by falling "
        "weights and regulated by a swinging bar. "
        "They were loud and often wrong by a quarter of an hour each day. "
        "The pendulum changed everything in the seventeenth century, cutting the error to a few "
        "seconds. "
        "Sailors still struggled, because a pendulum cannot keep time on a rolling ship, and "
        "without accurate time they could not find their longitude. "
        "A carpenter named John Harrison spent decades building sea clocks that finally solved "
        "the problem. "
        "Today, atomic clocks lose less than a second in millions of years, and the phone in "
        "your pocket quietly checks them many times a day."
    ),
}


@dataclass(frozen=True)
class EngineChoice:
    name: str
    voice: str
    """Engine-local voice id, for the raw engine."""

    @property
    def public_voice(self) -> str:
        return f"{self.name}:{self.voice}"


ENGINES = {
    "piper": EngineChoice("piper", "en_US-joe-medium"),
    "espeak": EngineChoice("espeak", "en-us"),
}
OPENAI_PCM_RATE = 24000
"""OpenAI's ``pcm`` is 16-bit at 24 kHz whatever the engine's rate."""
MODES = ("raw", "sse", "audio")
ORDER_NOTES = {
    "rotate": "rotated (client i starts at text i, so arrivals are spread out)",
    "same": "in the same order (lockstep arrivals, the worst case)",
}


@dataclass(frozen=True)
class Sample:
    """One request (or one raw synthesis of a text)."""

    mode: str
    clients: int
    text: str
    client: int
    ttfa: float
    """Seconds from sending (or starting) to the first audio."""
    wall: float
    audio_seconds: float

    @property
    def rtf(self) -> float:
        return ratio(self.wall, self.audio_seconds)


# --------------------------------------------------------------------------- raw engine


def make_engine(choice: EngineChoice, models_dir: Path) -> TTSEngine:
    """The engine exactly as the server's registry builds it, loaded."""
    engine: TTSEngine | None
    if choice.name == "piper":
        from voxserve.engines.piper import PiperEngine

        engine = PiperEngine.discover(models_dir)
        if engine is None:
            raise SystemExit(f"no Piper voice in {models_dir / 'piper'}")
    else:
        from voxserve.engines.espeak import EspeakEngine

        engine = EspeakEngine()
    engine.load()
    return engine


def raw_text(engine: TTSEngine, choice: EngineChoice, name: str, text: str) -> Sample:
    rate = engine.capabilities().sample_rate
    started = time.perf_counter()
    first: float | None = None
    samples = 0
    for sentence in split_sentences(text):
        for chunk in engine.synthesize(SynthesisRequest(text=sentence, voice=choice.voice)):
            if first is None and len(chunk):
                first = time.perf_counter() - started
            samples += len(chunk)
    wall = time.perf_counter() - started
    return Sample("raw", 1, name, 0, first or wall, wall, samples / rate)


def raw_pass(engine: TTSEngine, choice: EngineChoice) -> tuple[list[Sample], Batch]:
    started = time.perf_counter()
    samples = [raw_text(engine, choice, name, text) for name, text in TEXTS.items()]
    wall = time.perf_counter() - started
    return samples, Batch("raw", 1, wall, sum(s.audio_seconds for s in samples))


# --------------------------------------------------------------------------- through the server

Requester = Callable[[httpx.AsyncClient, str, int, str, str], Awaitable[Sample]]


def check_status(response: httpx.Response, body: bytes) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {body[:500]!r}")


async def sse_request(
    client: httpx.AsyncClient, engine: str, clients: int, name: str, voice: str
) -> Sample:
    """Mistral SSE with float32 PCM; counts the decoded size of every delta's base64."""
    body = {
        "model": engine,
        "input": TEXTS[name],
        "voice_id": voice,
        "response_format": "pcm",
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    audio_bytes = 0
    buffer = b""
    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            check_status(response, await response.aread())
        async for data in response.aiter_bytes():
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                size = delta_size(event)
                if size and first is None:
                    first = time.perf_counter() - started
                audio_bytes += size
    wall = time.perf_counter() - started
    rate = sample_rates[engine]
    return Sample("sse", clients, name, 0, first or wall, wall, audio_bytes / 4 / rate)


def delta_size(event: bytes) -> int:
    """Decoded bytes of audio in one SSE event (0 for other events); raises on error events."""
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        payload = json.loads(line[5:])
        kind = payload.get("type")
        if kind == "error":
            raise RuntimeError(f"error event: {payload}")
        if kind == "speech.audio.delta":
            return len(base64.b64decode(payload["audio_data"]))
    return 0


async def audio_request(
    client: httpx.AsyncClient, engine: str, clients: int, name: str, voice: str
) -> Sample:
    """OpenAI raw audio streaming, 16-bit PCM at 24 kHz."""
    body = {
        "model": engine,
        "input": TEXTS[name],
        "voice": voice,
        "response_format": "pcm",
        "stream_format": "audio",
    }
    started = time.perf_counter()
    first: float | None = None
    audio_bytes = 0
    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            check_status(response, await response.aread())
        async for data in response.aiter_raw():
            if data and first is None:
                first = time.perf_counter() - started
            audio_bytes += len(data)
    wall = time.perf_counter() - started
    seconds = audio_bytes / 2 / OPENAI_PCM_RATE
    return Sample("audio", clients, name, 0, first or wall, wall, seconds)


REQUESTERS: dict[str, Requester] = {"sse": sse_request, "audio": audio_request}
sample_rates: dict[str, int] = {}
"""Engine sample rates (Mistral's ``pcm`` is at the engine's rate), filled in ``main``."""


def client_order(index: int, rotate: bool) -> list[str]:
    """The texts in the order client ``index`` sends them: rotated by one text per client, so
    that clients are not in lockstep and new requests arrive while others are mid-stream."""
    names = list(TEXTS)
    shift = index % len(names) if rotate else 0
    return names[shift:] + names[:shift]


async def server_pass(
    url: str, mode: str, clients: int, choice: EngineChoice, rotate: bool
) -> tuple[list[Sample], Batch]:
    """Every client goes through every text (see ``client_order``); all start together."""
    requester = REQUESTERS[mode]

    async def one_client(index: int, http: httpx.AsyncClient) -> list[Sample]:
        done = []
        for name in client_order(index, rotate):
            sample = await requester(http, choice.name, clients, name, choice.public_voice)
            done.append(Sample(**{**asdict(sample), "client": index}))
        return done

    timeout = httpx.Timeout(600.0)
    https = [httpx.AsyncClient(base_url=url, timeout=timeout) for _ in range(clients)]
    try:
        # Open every connection first, so the measured requests do not include a TCP connect.
        await asyncio.gather(*(http.get("/health") for http in https))
        started = time.perf_counter()
        results = await asyncio.gather(*(one_client(i, h) for i, h in enumerate(https)))
        wall = time.perf_counter() - started
    finally:
        for http in https:
            await http.aclose()
    samples = [s for result in results for s in result]
    return samples, Batch(mode, clients, wall, sum(s.audio_seconds for s in samples))


# --------------------------------------------------------------------------- running


def run_pass(
    mode: str, clients: int, engine: TTSEngine, choice: EngineChoice, server: Server, rotate: bool
) -> tuple[list[Sample], Batch]:
    own, served = cpu_seconds(), cpu_seconds(server.pid)
    if mode == "raw":
        samples, batch = raw_pass(engine, choice)
        return samples, replace(batch, cpu_seconds=cpu_seconds() - own)
    samples, batch = asyncio.run(server_pass(server.url, mode, clients, choice, rotate))
    used = cpu_seconds(server.pid) - served
    return samples, replace(batch, cpu_seconds=used, client_cpu_seconds=cpu_seconds() - own)


def run(args: argparse.Namespace) -> dict[str, Any]:
    choice = ENGINES[args.engine]
    engine = make_engine(choice, args.models)
    sample_rates[choice.name] = engine.capabilities().sample_rate
    plan = [("raw", 1)] + [(m, c) for m in ("sse", "audio") for c in args.clients]
    rotate = args.order == "rotate"
    samples: list[Sample] = []
    batches: list[Batch] = []
    loads = [load_snapshot()]
    with running_server(args.models) as server:
        for _ in range(args.warmup):
            for mode in MODES:
                run_pass(mode, 1, engine, choice, server, rotate)
        loads.append(load_snapshot())
        with profiling(server, args.out, f"tts-{args.engine}", args.profile):
            for repeat in range(args.repeat):
                for mode, clients in rotated(plan, repeat):
                    time.sleep(0.5)  # let the other side's thread pools go idle
                    done, batch = run_pass(mode, clients, engine, choice, server, rotate)
                    samples += done
                    batches.append(replace(batch, load1=os.getloadavg()[0]))
                    print(
                        f"pass {repeat + 1}/{args.repeat} {mode} x{clients}: "
                        f"{batch.wall:.1f} s for {batch.audio_seconds:.1f} s audio",
                        file=sys.stderr,
                    )
        loads.append(load_snapshot())
    return {
        "benchmark": "tts",
        "engine": choice.name,
        "voice": choice.public_voice,
        "sample_rate": sample_rates[choice.name],
        "texts": {
            name: {"chars": len(t), "sentences": len(split_sentences(t))}
            for name, t in TEXTS.items()
        },
        "options": {
            "repeat": args.repeat,
            "warmup": args.warmup,
            "clients": args.clients,
            "order": args.order,
        },
        "machine": machine_info(["onnxruntime", "piper-tts", "espeakng-loader", "uvicorn"]),
        "load": loads,
        "samples": [{**asdict(s), "rtf": s.rtf} for s in samples],
        "batches": [asdict(b) for b in batches],
    }


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Row:
    mode: str
    clients: int
    ttfa_p50: float
    ttfa_p90: float
    rtf: float
    """Sum of request wall times over sum of audio seconds (per-request speed)."""
    throughput_rtf: float
    """The best pass's wall time over all the audio made in it (the output rate). Other work on
    a shared machine only ever adds time, so the fastest pass is the closest to the code's own
    cost."""
    cpu_rtf: float
    """The best pass's CPU seconds of the working side (raw: this process; else the server)
    per audio second."""
    client_cpu_rtf: float


def summarise(samples: Sequence[Sample], batches: Sequence[Batch], mode: str, clients: int) -> Row:
    mine = [s for s in samples if s.mode == mode and s.clients == clients]
    passes = [b for b in batches if b.mode == mode and b.clients == clients]
    ttfa = [s.ttfa * 1000 for s in mine]
    return Row(
        mode,
        clients,
        percentile(ttfa, 50),
        percentile(ttfa, 90),
        ratio(sum(s.wall for s in mine), sum(s.audio_seconds for s in mine)),
        min(ratio(b.wall, b.audio_seconds) for b in passes),
        min(ratio(b.cpu_seconds, b.audio_seconds) for b in passes),
        min(ratio(b.client_cpu_seconds, b.audio_seconds) for b in passes),
    )


def table(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    samples = [Sample(**{k: v for k, v in s.items() if k != "rtf"}) for s in data["samples"]]
    batches = [Batch(**b) for b in data["batches"]]
    raw = summarise(samples, batches, "raw", 1)
    rows = [raw]
    for mode in ("sse", "audio"):
        rows += [summarise(samples, batches, mode, c) for c in data["options"]["clients"]]
    single = {row.mode: row for row in rows if row.clients == 1}
    lines, verdicts = [], []
    for row in rows:
        checks = targets(row, raw, single[row.mode])
        verdicts.append({"mode": row.mode, "clients": row.clients, **asdict(row), **checks})
        lines.append(table_line(row, raw, checks))
    headers = [
        "mode", "clients", "TTFA p50 ms", "TTFA p90 ms", "RTF", "throughput RTF", "CPU RTF",
        "TTFA overhead ms", "RTF ratio", "CPU ratio", "targets",
    ]  # fmt: skip
    return markdown_table(headers, lines), verdicts


def targets(row: Row, raw: Row, single: Row) -> dict[str, Any]:
    """RTF (throughput) within 10% of raw. TTFA p50: 1 client at most 50 ms over raw; more
    clients within 2x the 1-client figure of the same mode."""
    if row.mode == "raw":
        return {}
    rtf_ok = row.throughput_rtf <= raw.throughput_rtf * 1.10
    if row.clients == 1:
        return {"ttfa_overhead_ok": row.ttfa_p50 - raw.ttfa_p50 <= 50, "rtf_ok": rtf_ok}
    return {"ttfa_vs_single_ok": row.ttfa_p50 <= 2 * single.ttfa_p50, "rtf_ok": rtf_ok}


def table_line(row: Row, raw: Row, checks: dict[str, Any]) -> list[str]:
    overhead = row.ttfa_p50 - raw.ttfa_p50
    rtf_ratio = ratio(row.throughput_rtf, raw.throughput_rtf)
    names = {
        "ttfa_overhead_ok": "TTFA +50 ms",
        "rtf_ok": "RTF +10%",
        "ttfa_vs_single_ok": "TTFA ≤2× 1-client",
    }
    shown = ", ".join(f"{names[k]} {verdict(v)}" for k, v in checks.items()) or "baseline"
    return [
        row.mode,
        str(row.clients),
        fmt(row.ttfa_p50),
        fmt(row.ttfa_p90),
        fmt(row.rtf, 3),
        fmt(row.throughput_rtf, 3),
        fmt(row.cpu_rtf, 3),
        "–" if row.mode == "raw" else f"{overhead:+.0f}",
        "–" if row.mode == "raw" else f"{rtf_ratio:.3f}",
        "–" if row.mode == "raw" else f"{ratio(row.cpu_rtf, raw.cpu_rtf):.3f}",
        shown,
    ]


def markdown(data: dict[str, Any], body: str) -> str:
    loads = ", ".join(f"{snap['loadavg'][0]:.2f}" for snap in data["load"])
    audio = statistics.fmean(s["audio_seconds"] for s in data["samples"] if s["mode"] == "raw")
    chars = ", ".join(str(t["chars"]) for t in data["texts"].values())
    options = data["options"]
    note = (
        f"{len(data['texts'])} texts ({chars} characters, mean {audio:.1f} s of audio), "
        f"{options['repeat']} measured passes after {options['warmup']} warm-up; clients send "
        f"them {ORDER_NOTES[options['order']]}. RTF: per request (sum of wall times over sum "
        "of audio). Throughput RTF: the best pass's wall time over all the audio made in it "
        "(load from others only adds time); RTF ratio is its ratio to raw. CPU RTF: CPU "
        "seconds per audio second (best pass) of the side doing the work (raw: the benchmark "
        "process; else the server process). 1-minute load average at start/after warm-up/end: "
        f"{loads}. Commit {data['machine']['git_commit']}."
    )
    title = f"### Speech: {data['voice']} ({data['machine']['cpus']} CPUs)"
    return "\n".join([title, "", body, "", note])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_common_options(parser, repeat=3, warmup=1)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="piper")
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4],
        help="client counts, comma-separated; must include 1 (default 1,4)",
    )
    parser.add_argument(
        "--order",
        choices=("rotate", "same"),
        default="rotate",
        help="rotate: client i starts at text i (arrivals spread out, the default); same: every "
        "client sends the texts in the same order (lockstep arrivals, the worst case)",
    )
    args = parser.parse_args(argv)
    if 1 not in args.clients:
        parser.error("--clients must include 1 (the other counts are compared with it)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    body, verdicts = table(data)
    data["summary"] = verdicts
    write_results(
        args.out,
        "tts" if args.engine == "piper" else f"tts-{args.engine}",
        data,
        markdown(data, body),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
