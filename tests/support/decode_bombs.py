"""Decode bombs for tests: hours of silence in a few MB of FLAC (#14 item 2)."""

from __future__ import annotations

import io

import av
import numpy as np

RATE = 8000


def silent_flac(hours: float, rate: int = RATE) -> bytes:
    """Hours of silence as FLAC: a few MB (the encoder writes the length into its header)."""
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
