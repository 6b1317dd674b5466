"""Run storage workers (``worker.py``) in separate processes and collect their results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT_S = 90


def run_workers(
    database_url: str, blob_dir: Path, owner_id: str, *, processes: int, count: int, limit: int
) -> list[dict[str, Any]]:
    """Start ``processes`` workers that each try ``count`` creates; return their results."""
    barrier = blob_dir.parent / "barrier"
    barrier.mkdir()
    arguments = [database_url, str(blob_dir), owner_id, str(count), str(limit), str(barrier)]
    command = [sys.executable, str(WORKER), *arguments, str(processes)]
    started = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    try:
        outputs = [process.communicate(timeout=TIMEOUT_S) for process in started]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, err) in zip(started, outputs, strict=True):
        assert process.returncode == 0, f"worker failed:\n{err}"
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
