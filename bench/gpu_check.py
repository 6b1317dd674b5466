"""GPU check (issue #12): load faster-whisper on CUDA as the server would, transcribe one clip,
print the device, compute type, real-time factor and transcript.

Exit codes: 0 it ran where asked; 1 CUDA was seen but the model did not load on it; 77 (the
"skipped" code of automake and CI runners) no CUDA device here for ``--device cuda``, said in one
line before anything loads.

    .venv/bin/python bench/gpu_check.py [--model faster-whisper-base] [--device cuda]
        [--compute-type float16] [--clip f5tts_examples/basic_ref_en.wav]

The clip comes from the shared data folder (``VOXSERVE_TEST_DATA``, else ``../shared/data``) and
its reference transcript from the manifest; the word error rate uses Whisper's English
normaliser when ``tests.support.wer`` can be imported (run from the checkout).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import REPO_ROOT, default_data_dir, default_models_dir

from voxserve.audio.decode import decode_path
from voxserve.engines.device import cuda_device_count
from voxserve.engines.faster_whisper import FasterWhisperEngine
from voxserve.engines.protocol import TranscriptionOptions

NO_CUDA = 77
"""Exit code when ``--device cuda`` finds no CUDA device: skipped, not failed."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="faster-whisper-base")
    parser.add_argument("--models", type=Path, default=default_models_dir())
    parser.add_argument("--device", default="cuda", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--compute-type", default=None)
    parser.add_argument("--clip", default="f5tts_examples/basic_ref_en.wav")
    args = parser.parse_args()

    cuda_devices = cuda_device_count()
    print(f"CUDA devices seen by CTranslate2: {cuda_devices}")
    if args.device == "cuda" and cuda_devices == 0:
        print("skipped: no CUDA device here (run this on a GPU machine, or pass --device auto)")
        return NO_CUDA
    data = default_data_dir()
    manifest = json.loads((data / "manifest.json").read_text())
    row = next(r for r in manifest if r["file"] == args.clip)
    audio = decode_path(data / args.clip, sample_rate=16000)

    engine = FasterWhisperEngine(
        args.models / args.model, device=args.device, compute_type=args.compute_type
    )
    started = time.perf_counter()
    engine.load()
    print(f"loaded {engine.name} in {time.perf_counter() - started:.2f} s")
    placement = engine.placement
    assert placement is not None
    print(f"device: {placement.device}  compute type: {placement.compute_type}")

    text, seconds = "", 0.0
    for _ in range(2):  # the first decode includes CUDA warm-up; report the second
        started = time.perf_counter()
        _, segments = engine.transcribe(audio, TranscriptionOptions(language="en"))
        text = "".join(segment.text for segment in segments).strip()
        seconds = time.perf_counter() - started
    rtf = seconds / audio.duration
    print(f"audio {audio.duration:.2f} s, decoded in {seconds:.3f} s: RTF {rtf:.4f}")
    print(f"transcript: {text}")
    print(f"reference:  {row['transcript']}")
    _print_wer(row["transcript"], text)
    return 0 if placement.device == "cuda" or args.device != "cuda" else 1


def _print_wer(reference: str, hypothesis: str) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.support.wer import wer
    except ImportError:
        return
    print(f"WER: {wer([reference], [hypothesis]):.3f}")


if __name__ == "__main__":
    sys.exit(main())
