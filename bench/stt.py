"""Transcription benchmark (issue #4): real-time factor (RTF) through the server against
faster-whisper called in-process on the same files, for 1 and 2 concurrent clients.

- ``raw``: ``FasterWhisperEngine`` built as the server builds it; per file: decode the bytes to
  16 kHz (``voxserve.audio.decode.decode``), transcribe, consume every segment.
- ``server``: ``POST /v1/audio/transcriptions`` (multipart, ``model=faster-whisper-base``,
  Mistral's JSON answer), one request per file.

RTF is wall time over audio seconds. Passes are interleaved (raw, 1 client, 2 clients, raw...,
one mode later each round) so that a change in machine load hits every mode alike. Target: the
server adds at most 5% to the throughput RTF (the best pass's wall time over all the audio
transcribed in it; with 2 clients the engine still runs one transcription at a time).

The clips are read from the shared data folder (``VOXSERVE_TEST_DATA``, else ``../shared/data``);
they are never copied into the repository.

    .venv/bin/python bench/stt.py [--repeat 3] [--warmup 1] [--model faster-whisper-base]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from common import (
    Batch,
    add_common_options,
    cpu_seconds,
    default_data_dir,
    fetch_hint,
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

from voxserve.audio.decode import decode
from voxserve.engines.faster_whisper import FasterWhisperEngine
from voxserve.engines.protocol import TranscriptionOptions

FILES = (
    "faster_whisper_tests/jfk.flac",
    "ljspeech/LJ001-0001.flac",
    "ljspeech/LJ001-0003.flac",
    "ljspeech/LJ001-0007.flac",
    "f5tts_examples/town.flac",
    "picovoice_leopard/test.wav",
    "rtvc_samples/p240_00000.mp3",
)
"""English clips, about 58 s in all, in three containers (FLAC, WAV, MP3)."""
MIME = {".flac": "audio/flac", ".wav": "audio/wav", ".mp3": "audio/mpeg"}
RTF_TARGET = 1.05


@dataclass(frozen=True)
class Clip:
    name: str
    data: bytes
    seconds: float
    """Decoded duration."""


@dataclass(frozen=True)
class Sample:
    mode: str
    clients: int
    file: str
    client: int
    wall: float
    audio_seconds: float
    text: str

    @property
    def rtf(self) -> float:
        return ratio(self.wall, self.audio_seconds)


def load_clips(data_dir: Path, names: Sequence[str]) -> list[Clip]:
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"no manifest.json in {data_dir}; set VOXSERVE_TEST_DATA")
    listed = {row["file"] for row in json.loads(manifest.read_text())}
    clips = []
    for name in names:
        if name not in listed:
            raise SystemExit(f"{name} is not in {manifest}")
        data = (data_dir / name).read_bytes()
        clips.append(Clip(name, data, decode(data, sample_rate=16000).duration))
    return clips


# --------------------------------------------------------------------------- raw engine


def raw_pass(engine: FasterWhisperEngine, clips: Sequence[Clip]) -> tuple[list[Sample], Batch]:
    samples = []
    started = time.perf_counter()
    for clip in clips:
        began = time.perf_counter()
        audio = decode(clip.data, sample_rate=16000)
        _info, segments = engine.transcribe(audio, TranscriptionOptions())
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        wall = time.perf_counter() - began
        samples.append(Sample("raw", 1, clip.name, 0, wall, audio.duration, text))
    wall = time.perf_counter() - started
    return samples, Batch("raw", 1, wall, sum(s.audio_seconds for s in samples))


# --------------------------------------------------------------------------- through the server


async def transcribe(
    http: httpx.AsyncClient, model: str, clip: Clip, clients: int, index: int
) -> Sample:
    mime = MIME.get(Path(clip.name).suffix, "application/octet-stream")
    files = {"file": (Path(clip.name).name, clip.data, mime)}
    began = time.perf_counter()
    response = await http.post("/v1/audio/transcriptions", files=files, data={"model": model})
    wall = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
    text = response.json()["text"]
    return Sample("server", clients, clip.name, index, wall, clip.seconds, text)


async def server_pass(
    url: str, model: str, clips: Sequence[Clip], clients: int
) -> tuple[list[Sample], Batch]:
    """Every client sends every file in order; all clients start together."""

    async def one_client(index: int, http: httpx.AsyncClient) -> list[Sample]:
        return [await transcribe(http, model, clip, clients, index) for clip in clips]

    https = [httpx.AsyncClient(base_url=url, timeout=600.0) for _ in range(clients)]
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
    return samples, Batch("server", clients, wall, sum(s.audio_seconds for s in samples))


# --------------------------------------------------------------------------- running


def run(args: argparse.Namespace) -> dict[str, Any]:
    clips = load_clips(args.data, args.files)
    model_dir = args.models / args.model
    if not model_dir.is_dir():
        raise SystemExit(f"no {args.model} in {args.models}: {fetch_hint()}")
    engine = FasterWhisperEngine(model_dir)  # the server's defaults (registry.discover)
    engine.load()
    plan = [("raw", 1)] + [("server", c) for c in args.clients]
    samples: list[Sample] = []
    batches: list[Batch] = []
    loads = [load_snapshot()]
    with running_server(args.models) as server:

        def one_pass(mode: str, clients: int) -> tuple[list[Sample], Batch]:
            own, served = cpu_seconds(), cpu_seconds(server.pid)
            if mode == "raw":
                samples, batch = raw_pass(engine, clips)
                return samples, replace(batch, cpu_seconds=cpu_seconds() - own)
            samples, batch = asyncio.run(server_pass(server.url, args.model, clips, clients))
            used = cpu_seconds(server.pid) - served
            return samples, replace(batch, cpu_seconds=used, client_cpu_seconds=cpu_seconds() - own)

        for _ in range(args.warmup):
            one_pass("raw", 1)
            one_pass("server", 1)
        loads.append(load_snapshot())
        with profiling(server, args.out, "stt", args.profile):
            for repeat in range(args.repeat):
                for mode, clients in rotated(plan, repeat):
                    time.sleep(0.5)  # let the other side's thread pools go idle
                    done, batch = one_pass(mode, clients)
                    samples += done
                    batches.append(replace(batch, load1=os.getloadavg()[0]))
                    print(
                        f"pass {repeat + 1}/{args.repeat} {mode} x{clients}: "
                        f"{batch.wall:.1f} s for {batch.audio_seconds:.1f} s audio",
                        file=sys.stderr,
                    )
        loads.append(load_snapshot())
    return {
        "benchmark": "stt",
        "model": args.model,
        "files": {clip.name: round(clip.seconds, 2) for clip in clips},
        "options": {"repeat": args.repeat, "warmup": args.warmup, "clients": args.clients},
        "engine": {
            "cpu_threads": engine.cpu_threads,
            "beam_size": engine.beam_size,
            "vad_filter": engine.vad_filter,
        },
        "machine": machine_info(["faster-whisper", "ctranslate2", "av", "uvicorn"]),
        "load": loads,
        "samples": [{**asdict(s), "rtf": s.rtf} for s in samples],
        "batches": [asdict(b) for b in batches],
    }


# --------------------------------------------------------------------------- summary


def summarise(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    samples = [Sample(**{k: v for k, v in s.items() if k != "rtf"}) for s in data["samples"]]
    batches = [Batch(**b) for b in data["batches"]]
    plan = [("raw", 1)] + [("server", c) for c in data["options"]["clients"]]
    rows = [row_numbers(samples, batches, mode, clients) for mode, clients in plan]
    raw = rows[0]
    lines, verdicts = [], []
    for row in rows:
        row["ratio"] = ratio(row["throughput_rtf"], raw["throughput_rtf"])
        row["cpu_ratio"] = ratio(row["cpu_rtf"], raw["cpu_rtf"])
        row["rtf_ok"] = None if row["mode"] == "raw" else row["ratio"] <= RTF_TARGET
        verdicts.append(row)
        lines.append(
            [
                row["mode"],
                str(row["clients"]),
                fmt(row["rtf"], 3),
                fmt(row["throughput_rtf"], 3),
                fmt(row["cpu_rtf"], 3),
                "–" if row["mode"] == "raw" else f"{row['ratio']:.3f}",
                "–" if row["mode"] == "raw" else f"{row['cpu_ratio']:.3f}",
                "baseline" if row["rtf_ok"] is None else f"RTF +5% {verdict(row['rtf_ok'])}",
            ]
        )
    headers = [
        "mode", "clients", "RTF", "throughput RTF", "CPU RTF", "RTF ratio",
        "CPU ratio", "target",
    ]  # fmt: skip
    return markdown_table(headers, lines), verdicts


def row_numbers(
    samples: Sequence[Sample], batches: Sequence[Batch], mode: str, clients: int
) -> dict[str, Any]:
    mine = [s for s in samples if s.mode == mode and s.clients == clients]
    passes = [b for b in batches if b.mode == mode and b.clients == clients]
    return {
        "mode": mode,
        "clients": clients,
        "rtf": ratio(sum(s.wall for s in mine), sum(s.audio_seconds for s in mine)),
        "rtf_p50": percentile([s.rtf for s in mine], 50),
        "throughput_rtf": min(ratio(b.wall, b.audio_seconds) for b in passes),
        "cpu_rtf": min(ratio(b.cpu_seconds, b.audio_seconds) for b in passes),
        "client_cpu_rtf": min(ratio(b.client_cpu_seconds, b.audio_seconds) for b in passes),
    }


def same_text(data: dict[str, Any]) -> float:
    """Share of server answers whose text equals the raw engine's for the same file (a check that
    both did the same work; beam search is deterministic, so this should be 1.0)."""
    raw = {s["file"]: s["text"] for s in data["samples"] if s["mode"] == "raw"}
    served = [s for s in data["samples"] if s["mode"] == "server"]
    return sum(s["text"] == raw[s["file"]] for s in served) / len(served) if served else 1.0


def markdown(data: dict[str, Any], body: str) -> str:
    loads = ", ".join(f"{snap['loadavg'][0]:.2f}" for snap in data["load"])
    total = sum(data["files"].values())
    return "\n".join(
        [
            f"### Transcription: {data['model']} ({data['machine']['cpus']} CPUs)",
            "",
            body,
            "",
            f"{len(data['files'])} English clips ({total:.1f} s in all), "
            f"{data['options']['repeat']} measured passes after {data['options']['warmup']} "
            "warm-up. RTF: per request (sum of wall times over sum of audio). Throughput RTF: "
            "the best pass's wall time over all the audio transcribed in it (load from others "
            "only adds time); RTF ratio is its ratio to raw. CPU RTF: CPU seconds per audio "
            "second (best pass) of the side doing the work (raw: the benchmark process; else "
            "the server process). "
            f"Server text identical to raw: {same_text(data):.0%}. "
            f"1-minute load average at start/after warm-up/end: {loads}. "
            f"Commit {data['machine']['git_commit']}.",
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_common_options(parser, repeat=3, warmup=1)
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="shared data folder")
    parser.add_argument("--model", default="faster-whisper-base", help="model folder name")
    parser.add_argument(
        "--files", nargs="+", default=list(FILES), help="clips, relative to the data folder"
    )
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="client counts, comma-separated (default 1,2)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    body, verdicts = summarise(data)
    data["summary"] = verdicts
    data["same_text_share"] = same_text(data)
    write_results(args.out, "stt", data, markdown(data, body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
