"""Where the time of a scale-out pass goes (``bench/scale.py``): CPU seconds of each process tree
(the replicas with their engine worker processes, PostgreSQL with its backends, the benchmark
process with its S3 emulator thread), PostgreSQL transactions and connections, and the raw
engines on the same inputs.

CPU is counted from ``/proc`` (Linux): a process tree's user + system time, children that
ended included (their parent reaped them). PostgreSQL's figures come from its own statistics
views, read after ``pg_stat_clear_snapshot`` and a pause (a backend reports its counts up to
a second late).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

from voxserve.audio.types import AudioClip
from voxserve.engines.protocol import STTEngine, SynthesisRequest, TranscriptionOptions, TTSEngine

STATS_DELAY_S = 1.1
"""PostgreSQL backends flush their statistics at most once a second."""


# --------------------------------------------------------------------------- CPU by process tree


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields from 3 on: state, ppid, ...
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        table[int(entry.name)] = (int(fields[1]), ticks / tick)
    return table


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds of the processes ``roots`` and all their descendants (NaN without /proc)."""
    if not Path("/proc/self/stat").exists():
        return math.nan
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo.extend(children.get(pid, ()))
    return total


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PgCounters:
    transactions: int
    connections: int
    """Connections to the benchmark's database now (the replicas' pools and job queues)."""


def _asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_counters(database_url: str) -> PgCounters:
    """Transactions committed or rolled back in the database so far, and its open connections
    (this one left out of both as far as it can be)."""
    await asyncio.sleep(STATS_DELAY_S)
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        transactions = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        connections = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return PgCounters(int(transactions), int(connections))


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def postmaster_pid(database_url: str) -> int | None:
    """PostgreSQL's main process (the parent of a backend), to count its CPU."""
    with psycopg.connect(_asyncpg_dsn(database_url)) as connection:
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return _parent_pid(int(row[0]))  # while connected: the backend ends with it


# --------------------------------------------------------------------------- one pass, measured


@dataclass
class Meter:
    """CPU of the replicas, PostgreSQL and this process, and PostgreSQL's transaction count,
    across one pass."""

    database_url: str
    replica_pids: Sequence[int]
    postgres_pid: int | None

    def _cpu(self) -> dict[str, float]:
        times = os.times()
        own = times.user + times.system
        return {
            "replicas": tree_cpu(self.replica_pids),
            "postgres": tree_cpu([self.postgres_pid]) if self.postgres_pid else math.nan,
            "bench_and_s3": own,
        }

    @contextmanager
    def measure(self, into: dict[str, Any]) -> Iterator[None]:
        """Adds ``cpu_s`` (by process tree), ``pg_transactions`` and ``pg_connections`` for
        what ran inside the block to ``into``."""
        before_pg = asyncio.run(pg_counters(self.database_url))
        before, started = self._cpu(), time.perf_counter()
        yield
        after, ended = self._cpu(), time.perf_counter()
        after_pg = asyncio.run(pg_counters(self.database_url))
        into["cpu_s"] = {name: after[name] - before[name] for name in before}
        into["measured_s"] = ended - started
        # Each reading is one transaction of its own: leave the second one's out. The
        # background jobs' transactions during the block and the stats delay are counted too:
        # the report subtracts them at the idle rate.
        into["pg_transactions"] = after_pg.transactions - before_pg.transactions - 1
        into["pg_counted_s"] = ended - started + STATS_DELAY_S
        into["pg_connections"] = after_pg.connections


def idle_profile(meter: Meter, seconds: float) -> dict[str, Any]:
    """What the replicas cost with no requests at all (background jobs: the batch worker's
    polling, cleanup, health checks), per second."""
    found: dict[str, Any] = {}
    with meter.measure(found):
        time.sleep(seconds)
    return {
        "seconds": seconds,
        "pg_transactions_per_s": found["pg_transactions"] / seconds,
        "cpu_per_s": {name: value / seconds for name, value in found["cpu_s"].items()},
        "pg_connections": found["pg_connections"],
    }


# --------------------------------------------------------------------------- the raw engines


def make_raw_engines() -> tuple[TTSEngine, STTEngine]:
    """espeak-ng and PocketSphinx as the server's registry builds them (PocketSphinx in a
    worker process of its own, as there), loaded."""
    from voxserve.engines.espeak import EspeakEngine
    from voxserve.engines.worker_process import ProcessSTTEngine

    tts = EspeakEngine()
    stt = ProcessSTTEngine("voxserve.engines.pocketsphinx:PocketsphinxEngine")
    tts.load()
    stt.load()
    return tts, stt


def raw_pass(
    tts: TTSEngine, stt: STTEngine, kind: str, text: str, voice: str, audio: AudioClip, n: int
) -> dict[str, Any]:
    """``n`` requests straight to the engine, one at a time (the engines run one request at a
    time, as in each replica): requests per second and CPU seconds of this process tree."""

    def one() -> None:
        if kind == "speech":
            for _ in tts.synthesize(SynthesisRequest(text=text, voice=voice)):
                pass
        else:
            _, segments = stt.transcribe(audio, TranscriptionOptions(language="en"))
            for _ in segments:
                pass

    cpu = tree_cpu([os.getpid()])
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:  # off this thread, as in the server
        for _ in range(n):
            pool.submit(one).result()
    wall = time.perf_counter() - started
    return {"requests": n, "wall_s": wall, "rps": n / wall, "cpu_s": tree_cpu([os.getpid()]) - cpu}
