"""Realtime benchmark (issue #10): WebSocket sessions against the raw engines on the same audio.

- STT, ``raw``: ``FasterWhisperEngine`` (built as the server builds it) transcribes each whole
  clip in-process: its batch text and its decode time.
- STT, ``server``: ``WS /v1/audio/transcriptions/realtime`` sessions, 1 and 4 at once, each
  streaming a clip in 100 ms chunks at real-time pace. Per session: speech onset (the batch
  decode's first word) to the first ``text.delta``; end of audio to ``transcription.done``
  (target: at most the clip's batch decode + 150 ms); the longest a delta's words trailed the
  audio (lag; must stay bounded at 4 sessions), also in batch decodes of the clip (the lag over
  the clip's raw decode time: on a shared machine every decode slows alike, so this ratio
  is what compares across runs); streaming WER against the reference, beside the batch WER
  (target: at most 1.15x).
- Speech: the raw Piper engine's time to the first chunk of a clause, against the time from
  flushing that clause on ``WS /v1/audio/speech/realtime`` to its first ``speech.audio.delta``
  (target: at most raw + 50 ms).

    .venv/bin/python bench/realtime.py [--repeat 2] [--clients 1,4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from common import (
    add_common_options,
    default_data_dir,
    fmt,
    load_snapshot,
    machine_info,
    markdown_table,
    running_server,
    verdict,
    write_results,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.wer import wer

from voxserve.audio.decode import decode
from voxserve.audio.types import AudioClip
from voxserve.engines.faster_whisper import FasterWhisperEngine
from voxserve.engines.protocol import SynthesisRequest, TranscriptionOptions

CLIPS = (
    "f5tts_examples/basic_ref_en.wav",
    "faster_whisper_tests/jfk.flac",
    "ljspeech/LJ001-0001.flac",
    "ljspeech/LJ001-0004.flac",
)
CLAUSE = "When the morning train arrived at the station,"
CHUNK_S = 0.1
DONE_MARGIN_S = 0.15
WER_TARGET = 1.15
SPEECH_MARGIN_S = 0.05


@dataclass(frozen=True)
class Clip:
    name: str
    samples: np.ndarray
    reference: str
    batch_text: str = ""
    batch_seconds: float = 0.0
    onset: float = 0.0


@dataclass(frozen=True)
class Session:
    clients: int
    clip: str
    first_delta_s: float
    done_after_end_s: float
    batch_seconds: float
    max_lag_s: float
    text: str


def load_clips(data_dir: Path, names: Sequence[str]) -> list[Clip]:
    rows = {r["file"]: r for r in json.loads((data_dir / "manifest.json").read_text())}
    return [
        Clip(
            n, decode((data_dir / n).read_bytes(), sample_rate=16000).samples, rows[n]["transcript"]
        )
        for n in names
    ]


def raw_stt(engine: FasterWhisperEngine, clip: Clip) -> Clip:
    audio = decode_clip(clip)
    started = time.perf_counter()
    _info, segments = engine.transcribe(audio, TranscriptionOptions(word_timestamps=True))
    done = list(segments)
    seconds = time.perf_counter() - started
    words = [w for s in done for w in (s.words or ())]
    onset = words[0].start if words else 0.0
    text = " ".join(s.text.strip() for s in done)
    return Clip(clip.name, clip.samples, clip.reference, text, seconds, onset)


def decode_clip(clip: Clip) -> AudioClip:
    return AudioClip(clip.samples, 16000)


async def stt_session(url: str, clip: Clip, clients: int) -> Session:
    pcm = (np.clip(clip.samples, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(16000 * CHUNK_S) * 2
    async with websockets.connect(f"{url}/v1/audio/transcriptions/realtime?model=whisper-1") as ws:
        await ws.recv()  # session.created
        start = time.monotonic()
        sender = asyncio.create_task(send_paced(ws, pcm, step, start))
        first, lag, done_at, text = None, 0.0, 0.0, ""
        async for raw in ws:
            event = json.loads(raw)
            now = time.monotonic() - start
            if event["type"] == "transcription.text.delta":
                first = now if first is None else first
            elif event["type"] == "transcription.segment" and event["end"] is not None:
                lag = max(lag, now - event["end"])  # how far the text trailed the speech
            elif event["type"] == "transcription.done":
                done_at, text = now, event["text"]
                break
        ended = await sender
    return Session(
        clients,
        clip.name,
        (first or done_at) - clip.onset,
        done_at - ended,
        clip.batch_seconds,
        lag,
        text,
    )


async def send_paced(ws: Any, pcm: bytes, step: int, start: float) -> float:
    for i, at in enumerate(range(0, len(pcm), step)):
        await asyncio.sleep(max(0.0, start + i * CHUNK_S - time.monotonic()))
        chunk = base64.b64encode(pcm[at : at + step]).decode()
        await ws.send(json.dumps({"type": "input_audio.append", "audio": chunk}))
    ended = time.monotonic() - start
    await ws.send(json.dumps({"type": "input_audio.flush"}))
    await ws.send(json.dumps({"type": "input_audio.end"}))
    return ended


async def stt_pass(url: str, clips: Sequence[Clip], clients: int) -> list[Session]:
    sessions: list[Session] = []
    for i in range(len(clips)):
        group = [clips[(i + k) % len(clips)] for k in range(clients)]
        sessions += await asyncio.gather(*(stt_session(url, c, clients) for c in group))
    return sessions


def raw_speech(models_dir: Path) -> tuple[float, Any]:
    from voxserve.engines.piper import PiperEngine

    engine = PiperEngine.discover(models_dir)
    if engine is None:
        raise SystemExit(f"no Piper voice in {models_dir / 'piper'}")
    engine.load()
    voice = engine.capabilities().voices[0].id
    for _ in range(2):  # warm-up: the first calls pay ONNX Runtime's start-up
        list(engine.synthesize(SynthesisRequest(text=CLAUSE, voice=voice)))
    started = time.perf_counter()
    next(iter(engine.synthesize(SynthesisRequest(text=CLAUSE, voice=voice))))
    return time.perf_counter() - started, f"piper:{voice}"


async def speech_session(url: str, voice: str) -> float:
    async with websockets.connect(f"{url}/v1/audio/speech/realtime?model=piper") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {"voice": voice}}))
        await ws.recv()
        started = time.monotonic()
        await ws.send(json.dumps({"type": "input_text.append", "text": CLAUSE + " and"}))
        while json.loads(await ws.recv())["type"] != "speech.audio.delta":
            pass
        first = time.monotonic() - started
        await ws.send(json.dumps({"type": "input_text.end"}))
        while json.loads(await ws.recv())["type"] != "speech.audio.done":
            pass
        return first


def run(args: argparse.Namespace) -> dict[str, Any]:
    engine = FasterWhisperEngine(args.models / "faster-whisper-base")
    engine.load()
    clips = load_clips(args.data, CLIPS)
    for clip in clips:  # warm-up
        raw_stt(engine, clip)
    clips = [raw_stt(engine, c) for c in clips]
    raw_speech_s, voice = raw_speech(args.models)
    env = {"VOXSERVE_ENGINES__DEFAULT_STT": "faster-whisper-base"}
    data: dict[str, Any] = {"machine": machine_info(["faster-whisper", "piper-tts"])}
    data["load_start"] = load_snapshot()
    with running_server(args.models, env) as server:
        url = server.url.replace("http", "ws")
        asyncio.run(stt_pass(url, clips[:1], 1))  # warm-up: loads the engines
        sessions = []
        for _ in range(args.repeat):
            for clients in args.clients:
                sessions += asyncio.run(stt_pass(url, clips, clients))
        speech = [asyncio.run(speech_session(url, voice)) for _ in range(args.repeat + 1)][1:]
    data["load_end"] = load_snapshot()
    data["clips"] = [{k: v for k, v in asdict(c).items() if k != "samples"} for c in clips]
    data["sessions"] = [asdict(s) for s in sessions]
    data["speech"] = {"raw_first_chunk_s": raw_speech_s, "server_first_delta_s": speech}
    return data


def markdown(data: dict[str, Any], clients: Sequence[int]) -> str:
    clips = {c["name"]: c for c in data["clips"]}
    batch_wer = wer(
        [c["reference"] for c in clips.values()], [c["batch_text"] for c in clips.values()]
    )
    rows = []
    for n in clients:
        ss = [s for s in data["sessions"] if s["clients"] == n]
        stream_wer = wer([clips[s["clip"]]["reference"] for s in ss], [s["text"] for s in ss])
        done_ok = all(s["done_after_end_s"] <= s["batch_seconds"] + DONE_MARGIN_S for s in ss)
        worst_done = max(s["done_after_end_s"] - s["batch_seconds"] for s in ss)
        wer_ok = stream_wer <= WER_TARGET * batch_wer + 0.01
        rows.append(
            [
                str(n),
                str(len(ss)),
                fmt(max(s["first_delta_s"] for s in ss), 2),
                fmt(max(s["done_after_end_s"] for s in ss), 2),
                f"{fmt(worst_done * 1000)} ms {verdict(done_ok if n == 1 else True)}",
                f"{fmt(stream_wer, 3)} / {fmt(batch_wer, 3)} {verdict(wer_ok)}",
                fmt(max(s["max_lag_s"] for s in ss), 2),
                fmt(max(s["max_lag_s"] / s["batch_seconds"] for s in ss), 1),
            ]
        )
    stt = markdown_table(
        [
            "sessions",
            "n",
            "onset→first delta (s, max)",
            "end→done (s, max)",
            "end→done − batch decode (worst; ≤150 ms at 1)",
            "WER stream / batch (≤1.15x)",
            "max lag (s)",
            "max lag (batch decodes)",
        ],
        rows,
    )
    sp = data["speech"]
    server, raw = min(sp["server_first_delta_s"]), sp["raw_first_chunk_s"]
    speech = markdown_table(
        ["raw Piper first chunk (s)", "server first delta (s, best)", "overhead (ms, ≤50)"],
        [
            [
                fmt(raw, 3),
                fmt(server, 3),
                f"{fmt((server - raw) * 1000)} {verdict(server <= raw + SPEECH_MARGIN_S)}",
            ]
        ],
    )
    load = f"load average: {data['load_start']} at start, {data['load_end']} at the end"
    return (
        f"### Realtime transcription (faster-whisper base)\n\n{stt}\n\n"
        f"### Realtime speech (Piper)\n\n{speech}\n\n{load}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_common_options(parser, repeat=1, warmup=1)
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="shared data folder")
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4],
        help="concurrent sessions, comma-separated (default 1,4)",
    )
    parser.add_argument("--report", type=Path, help="print the table of this JSON, run nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:  # the table again from a run's JSON (say, after changing it)
        data = json.loads(args.report.read_text())
        print(markdown(data, sorted({s["clients"] for s in data["sessions"]})))
        return 0
    data = run(args)
    write_results(args.out, "realtime", data, markdown(data, args.clients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
