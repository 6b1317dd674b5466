"""The markdown report of ``bench/scale.py`` (its JSON holds every pass)."""

from __future__ import annotations

import statistics
from typing import Any

from common import fmt, markdown_table

BLOB_HEADERS = ["store", "put/s", "get/s", "put MB/s", "get MB/s", "stream put MB/s",
                "stream get MB/s"]  # fmt: skip
LOAD_HEADERS = ["kind", "replicas", "req/s", "raw req/s", "x raw", "p50 ms", "p95 ms",
                "CPU ms/req: raw engine", "replicas", "PG", "bench+S3", "PG tx/req",
                "failed"]  # fmt: skip
IDLE_HEADERS = ["replicas", "PG tx/s", "replicas CPU %", "PG CPU %", "PG connections"]


def _median(passes: list[dict[str, Any]], *path: str) -> float:
    values = []
    for found in passes:
        value: Any = found
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def _per_request(passes: list[dict[str, Any]], name: str) -> float:
    return statistics.median(p["cpu_s"][name] / p["requests"] * 1000 for p in passes)


def _pg_per_request(passes: list[dict[str, Any]], idle: dict[str, Any]) -> float:
    """Transactions per request, less the background jobs' (at the idle rate)."""
    rate = idle["pg_transactions_per_s"]
    return statistics.median(
        (p["pg_transactions"] - rate * p["pg_counted_s"]) / p["requests"] for p in passes
    )


def load_row(kind: str, count: str, found: dict[str, Any]) -> list[str]:
    passes = found[kind]
    return [
        kind, count, fmt(_median(passes, "rps"), 2), fmt(_median(passes, "raw", "rps"), 2),
        fmt(_median(passes, "ratio_to_raw"), 2), fmt(_median(passes, "p50_s") * 1000),
        fmt(_median(passes, "p95_s") * 1000),
        fmt(statistics.median(p["raw"]["cpu_s"] / p["raw"]["requests"] * 1000 for p in passes)),
        fmt(_per_request(passes, "replicas")),
        fmt(_per_request(passes, "postgres")), fmt(_per_request(passes, "bench_and_s3")),
        fmt(_pg_per_request(passes, found["idle"]), 1),
        str(sum(p["failures"] for p in passes)),
    ]  # fmt: skip


def idle_row(count: str, idle: dict[str, Any]) -> list[str]:
    cpu = idle["cpu_per_s"]
    return [
        count, fmt(idle["pg_transactions_per_s"], 1), fmt(cpu["replicas"] * 100, 1),
        fmt(cpu["postgres"] * 100, 1), str(idle["pg_connections"]),
    ]  # fmt: skip


def verdicts(data: dict[str, Any]) -> list[str]:
    lines = []
    for kind in ("speech", "transcription"):
        one, two = data["replicas"]["1"][kind], data["replicas"]["2"][kind]
        rps = _median(two, "rps") / _median(one, "rps")
        raw = _median(two, "ratio_to_raw") / _median(one, "ratio_to_raw")
        cpu = _per_request(two, "replicas") / _per_request(one, "replicas")
        lines.append(
            f"- {kind}: two replicas {rps:.2f}x the throughput of one ({raw:.2f}x against the "
            f"raw engine measured beside each pass); replica CPU per request {cpu:.2f}x"
        )
    return lines


def markdown(data: dict[str, Any]) -> str:
    blob_rows = [
        [name, fmt(r["put_per_s"]), fmt(r["get_per_s"]), fmt(r["put_mb_s"], 1),
         fmt(r["get_mb_s"], 1), fmt(r["stream_put_mb_s"], 1), fmt(r["stream_get_mb_s"], 1)]
        for name, r in data["blobs"].items()
    ]  # fmt: skip
    replicas = data["replicas"]
    load_rows = [
        load_row(kind, count, replicas[count])
        for kind in ("speech", "transcription")
        for count in replicas
    ]
    idle_rows = [idle_row(count, found["idle"]) for count, found in replicas.items()]
    return "\n".join(
        [
            "# Scale-out: shared PostgreSQL + S3",
            "",
            f"Load before: `{data['load_before']['uptime']}`; after: "
            f"`{data['load_after']['uptime']}`.",
            "",
            "## Blob store",
            "",
            markdown_table(BLOB_HEADERS, blob_rows),
            "",
            "## Replicas (round-robin, same machine; medians of the passes)",
            "",
            markdown_table(LOAD_HEADERS, load_rows),
            "",
            *verdicts(data),
            "",
            "## Idle (background jobs only)",
            "",
            markdown_table(IDLE_HEADERS, idle_rows),
        ]
    )
