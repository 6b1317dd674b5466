"""Measuring what a request costs the server in memory and open files (#14 item 8).

The live server of ``tests.support.live_server`` runs in this process, so ``tracemalloc`` sees
the server's allocations and ``/proc/self/fd`` its open files; the client side streams from disk
and adds little of its own.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import numpy as np

RATE = 16000
MIB = 1024 * 1024
T = TypeVar("T")


def long_wav(path: Path, megabytes: float) -> Path:
    """A 16 kHz mono 16-bit WAV of about ``megabytes`` (a quiet tone), written in pieces."""
    second = (np.sin(np.arange(RATE) * 2 * np.pi * 220 / RATE) * 3000).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for _ in range(int(megabytes * MIB) // len(second)):
            out.writeframes(second)
    return path


def wav_seconds(megabytes: float) -> float:
    """The duration of ``long_wav(..., megabytes)``, to within a second."""
    return int(megabytes * MIB) // (2 * RATE)


def peak_while(action: Callable[[], T]) -> tuple[int, T]:
    """Peak traced memory (bytes) while ``action`` runs, and what it returned."""
    tracemalloc.start()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serves ``folder`` over HTTP on loopback (the standard library streams each file)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def open_temporary_files() -> int:
    """How many deleted files in the temporary folder this process holds open: spools (anonymous
    temporary files) not closed yet. Linux only (``/proc/self/fd``)."""
    folder = os.path.realpath(tempfile.gettempdir())
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, among others)
        if target.startswith(folder + "/") and target.endswith(" (deleted)"):
            count += 1
    return count


def bytes_written() -> int:
    """Bytes this process has passed to ``write`` calls so far (files and sockets alike; Linux
    ``/proc/self/io`` ``wchar``)."""
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")
