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

The texts and records are in ``tts_data``, the requests through the server in ``tts_server``, and
the summary table in ``tts_report``; this script runs the passes and writes the results.

    .venv/bin/python bench/tts.py [--engine piper|espeak] [--repeat 3] [--warmup 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from common import (
    Batch,
    Server,
    add_common_options,
    cpu_seconds,
    fetch_hint,
    load_snapshot,
    machine_info,
    profiling,
    rotated,
    running_server,
    write_results,
)
from tts_data import ENGINES, TEXTS, EngineChoice, Sample
from tts_report import markdown, table
from tts_server import sample_rates, server_pass

from voxserve.core.text import split_sentences
from voxserve.engines.protocol import SynthesisRequest, TTSEngine

MODES = ("raw", "sse", "audio")


# --------------------------------------------------------------------------- raw engine


def make_engine(choice: EngineChoice, models_dir: Path) -> TTSEngine:
    """The engine exactly as the server's registry builds it, loaded."""
    engine: TTSEngine | None
    if choice.name == "piper":
        from voxserve.engines.piper import PiperEngine

        engine = PiperEngine.discover(models_dir)
        if engine is None:
            raise SystemExit(f"no Piper voice in {models_dir / 'piper'}: {fetch_hint()}")
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
    rotate = args.order == "rotate"
    loads = [load_snapshot()]
    with running_server(args.models) as server:
        for _ in range(args.warmup):
            for mode in MODES:
                run_pass(mode, 1, engine, choice, server, rotate)
        loads.append(load_snapshot())
        with profiling(server, args.out, f"tts-{args.engine}", args.profile):
            samples, batches = measured_passes(args, engine, choice, server, rotate)
        loads.append(load_snapshot())
    return results(args, choice, loads, samples, batches)


def measured_passes(
    args: argparse.Namespace, engine: TTSEngine, choice: EngineChoice, server: Server, rotate: bool
) -> tuple[list[Sample], list[Batch]]:
    """``args.repeat`` rounds of every mode and client count, one mode later each round."""
    plan = [("raw", 1)] + [(m, c) for m in ("sse", "audio") for c in args.clients]
    samples: list[Sample] = []
    batches: list[Batch] = []
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
    return samples, batches


def results(
    args: argparse.Namespace,
    choice: EngineChoice,
    loads: list[dict[str, Any]],
    samples: list[Sample],
    batches: list[Batch],
) -> dict[str, Any]:
    """Every raw number of the run, as written to the JSON file."""
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
