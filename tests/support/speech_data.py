"""Real speech clips for tests: the shared data set's manifest, and a decoder for its files.

The clips live outside the repository (``VOXSERVE_TEST_DATA``, else the first ``shared/data``
folder found walking up from the repository root). Tests that need them skip with a clear reason
when the folder is absent. Decoding uses PyAV directly so engine tests do not depend on
``voxserve.audio``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from voxserve.audio.types import AudioClip

REPO_ROOT = Path(__file__).resolve().parents[2]
RAW_SAMPLE_RATE = 16000
"""``.raw`` files in the data set are headerless 16 kHz signed 16-bit little-endian mono."""


@dataclass(frozen=True)
class SpeechClip:
    """One manifest row, with its file resolved."""

    path: Path
    file: str
    """Path relative to the data folder, as the manifest writes it."""
    duration: float
    speaker: str
    language: str
    transcript: str
    transcript_kind: str
    """``reference`` for a human transcript; ``ASR ...`` rows carry a machine guess."""

    @property
    def is_reference(self) -> bool:
        return self.transcript_kind == "reference"


def find_data_dir() -> Path | None:
    """The data folder, or None when it cannot be found."""
    env = os.environ.get("VOXSERVE_TEST_DATA")
    if env:
        path = Path(env)
        return path if (path / "manifest.json").is_file() else None
    for parent in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = parent / "shared" / "data"
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


def data_dir() -> Path:
    """The data folder; skips the calling test when it is absent."""
    found = find_data_dir()
    if found is None:
        pytest.skip(
            "speech data not found: set VOXSERVE_TEST_DATA to a folder with manifest.json "
            "(default: shared/data above the repository root)"
        )
    return found


def clips(
    *, language: str | None = None, kind: str | None = None, folder: str | None = None
) -> Iterator[SpeechClip]:
    """Manifest rows matching every filter given (``kind`` matches ``transcript_kind`` exactly;
    ``folder`` is the first path component of ``file``). Skips when the data is absent."""
    root = data_dir()
    rows = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    for row in rows:
        clip = SpeechClip(
            path=root / row["file"],
            file=row["file"],
            duration=float(row["duration"]),
            speaker=row.get("speaker", ""),
            language=row["language"],
            transcript=row["transcript"],
            transcript_kind=row["transcript_kind"],
        )
        if language is not None and clip.language != language:
            continue
        if kind is not None and clip.transcript_kind != kind:
            continue
        if folder is not None and clip.file.split("/", 1)[0] != folder:
            continue
        yield clip


def clip(file: str) -> SpeechClip:
    """The manifest row for one file (relative path); skips when the data is absent."""
    for found in clips():
        if found.file == file:
            return found
    raise LookupError(f"{file} is not in the speech data manifest")


def decode(path: Path, sample_rate: int = 16000) -> AudioClip:
    """Decode any audio file to mono float32 at ``sample_rate``."""
    if path.suffix == ".raw":
        if sample_rate != RAW_SAMPLE_RATE:
            raise ValueError(f"{path.name} is raw {RAW_SAMPLE_RATE} Hz audio; no resampling here")
        pcm = np.frombuffer(path.read_bytes(), dtype="<i2")
        return AudioClip((pcm / 32768.0).astype(np.float32), sample_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        parts.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    samples = np.concatenate(parts) if parts else np.zeros(0)
    return AudioClip(samples.astype(np.float32, copy=False), sample_rate)
