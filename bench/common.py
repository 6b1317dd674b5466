"""Shared helpers for the benchmark scripts: the server under test, statistics, machine facts,
and writing results (JSON with every raw number, plus a markdown table).

The scripts measure the server against the raw engine called in-process on the same input, so
every speed figure is a ratio on the same machine at the same time, not an absolute number.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results"
STARTUP_TIMEOUT = 120.0
"""Seconds to wait for ``/health``: the first start also runs the database migrations."""
STOP_TIMEOUT = 15.0


# --------------------------------------------------------------------------- paths and options


TEST_MODELS_FETCHER = REPO_ROOT.parent / "shared" / "test-models" / "fetch"
"""``../shared/test-models/fetch`` next to the checkout: fills a folder with the test models."""
FETCHER_DEFAULT_DIR = Path.home() / ".cache" / "voxserve-test-models"
"""The folder the fetcher fills (and prints) when given none and ``VOXSERVE_TEST_MODELS`` is
unset."""


def default_models_dir() -> Path:
    """``VOXSERVE_TEST_MODELS``, else the fetcher's default folder."""
    return Path(os.environ.get("VOXSERVE_TEST_MODELS") or FETCHER_DEFAULT_DIR)


def fetch_hint() -> str:
    """How to get the test models, for the message of a benchmark that finds none."""
    return f"fill the folder with {TEST_MODELS_FETCHER} [DIR] (it prints DIR), or pass --models DIR"


def default_data_dir() -> Path:
    """``VOXSERVE_TEST_DATA``, else the first ``shared/data`` above the repository."""
    env = os.environ.get("VOXSERVE_TEST_DATA")
    if env:
        return Path(env)
    for parent in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = parent / "shared" / "data"
        if (candidate / "manifest.json").is_file():
            return candidate
    return REPO_ROOT.parent / "shared" / "data"


def add_common_options(parser: argparse.ArgumentParser, *, repeat: int, warmup: int) -> None:
    parser.add_argument(
        "--models", type=Path, default=default_models_dir(), help="models folder (test models)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for JSON and .md")
    parser.add_argument(
        "--repeat", type=int, default=repeat, help="measured passes over the inputs"
    )
    parser.add_argument(
        "--warmup", type=int, default=warmup, help="unmeasured passes before measuring"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with py-spy (must be installed) into the out folder",
    )


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rotated(plan: Sequence[T], shift: int) -> list[T]:
    """``plan`` started at item ``shift`` (modulo its length). Each measured pass runs the modes
    in a different order, so that no mode always follows the same one (a heavy 4-client pass
    leaves the machine warmer and busier than a light one)."""
    if not plan:
        return []
    shift %= len(plan)
    return [*plan[shift:], *plan[:shift]]


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else math.nan


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- machine facts


def load_snapshot() -> dict[str, Any]:
    """The load right now (other engineers may be running tests on the same cores)."""
    uptime = shutil.which("uptime")
    text = ""
    if uptime:
        text = subprocess.run([uptime], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg": list(os.getloadavg()),
        "uptime": text,
    }


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "packages": versions,
    }


def _git_commit() -> str | None:
    git = shutil.which("git")
    if not git:
        return None
    done = subprocess.run(
        [git, "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Dirty means the server's code differs from the commit (bench/ edits do not count).
    dirty = subprocess.run(
        [git, "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = done.stdout.strip() or None
    return f"{commit}+dirty" if commit and dirty.stdout.strip() else commit


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default), all its threads together.

    CPU time is far less disturbed than wall time by other work on a shared machine, so the
    tables show it beside the RTF. NaN where ``/proc`` is missing (not Linux).
    """
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    # Fields after the command name (which may hold spaces) start at field 3; utime and stime
    # are fields 14 and 15, in clock ticks.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    """A running ``voxserve serve`` subprocess."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def voxserve_command() -> list[str]:
    """The ``voxserve`` console script of the interpreter running the benchmark, or the command
    in ``VOXSERVE_BENCH_SERVER`` (to measure a patched or installed server the same way)."""
    override = os.environ.get("VOXSERVE_BENCH_SERVER")
    if override:
        return shlex.split(override)
    beside = Path(sys.executable).with_name("voxserve")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("voxserve")
    if found:
        return [found]
    return [sys.executable, "-m", "voxserve.cli.main"]


@contextlib.contextmanager
def running_server(models_dir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start the real server on a free port with a fresh data folder; stop it afterwards.

    Its log goes to a file in the data folder; the last lines are shown if it fails to start.
    """
    with tempfile.TemporaryDirectory(prefix="voxserve-bench-") as tmp:
        port = free_port()
        log_path = Path(tmp) / "server.log"
        server_env = {
            **os.environ,
            "VOXSERVE_DATA_DIR": str(Path(tmp) / "data"),
            "VOXSERVE_MODELS_DIR": str(models_dir),
            **(env or {}),
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*voxserve_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_healthy(server)
            yield server
        finally:
            _stop(process)


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited at startup:\n{log_tail(server.log_path)}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health:\n{log_tail(server.log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def profiling(server: Server, out: Path, name: str, enabled: bool) -> Iterator[None]:
    """Record the server with py-spy while the block runs: collapsed stacks (one line per stack
    with its sample count, as flamegraph.pl and speedscope read them) in ``out``."""
    if not enabled:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: uv pip install py-spy (not a project dependency)")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.collapsed.txt"
    command = [py_spy, "record", "--pid", str(server.pid), "--format", "raw"]
    command += ["--output", str(target), "--threads", "--rate", "250", "--nonblocking"]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let py-spy attach before the work starts
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(60)
        except subprocess.TimeoutExpired:
            recorder.kill()
        print(f"profile: {target}", file=sys.stderr)


# --------------------------------------------------------------------------- output


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.{digits}f}"


def write_results(out: Path, name: str, data: dict[str, Any], markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {out / (name + '.json')} and {out / (name + '.md')}", file=sys.stderr)


@dataclass(frozen=True)
class Batch:
    """One pass: every client through every text, concurrently."""

    mode: str
    clients: int
    wall: float
    audio_seconds: float
    cpu_seconds: float = math.nan
    """CPU time of the side doing the work: this process for raw, the server process else."""
    client_cpu_seconds: float = math.nan
    """CPU time of this process (the HTTP clients) during a server pass."""
    load1: float = math.nan
    """The machine's 1-minute load average just after the pass."""
