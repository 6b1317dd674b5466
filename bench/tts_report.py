"""The speech benchmark's summary: one row per mode and client count, the targets it checks,
and the markdown table and note written next to the JSON.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from common import Batch, fmt, markdown_table, percentile, ratio, verdict
from tts_data import Sample

ORDER_NOTES = {
    "rotate": "rotated (client i starts at text i, so arrivals are spread out)",
    "same": "in the same order (lockstep arrivals, the worst case)",
}


@dataclass(frozen=True)
class Row:
    mode: str
    clients: int
    ttfa_p50: float
    ttfa_p90: float
    rtf: float
    """Sum of request wall times over sum of audio seconds (per-request speed)."""
    throughput_rtf: float
    """The best pass's wall time over all the audio made in it (the output rate). Other work on
    a shared machine only ever adds time, so the fastest pass is the closest to the code's own
    cost."""
    cpu_rtf: float
    """The best pass's CPU seconds of the working side (raw: this process; else the server)
    per audio second."""
    client_cpu_rtf: float


def summarise(samples: Sequence[Sample], batches: Sequence[Batch], mode: str, clients: int) -> Row:
    mine = [s for s in samples if s.mode == mode and s.clients == clients]
    passes = [b for b in batches if b.mode == mode and b.clients == clients]
    ttfa = [s.ttfa * 1000 for s in mine]
    return Row(
        mode,
        clients,
        percentile(ttfa, 50),
        percentile(ttfa, 90),
        ratio(sum(s.wall for s in mine), sum(s.audio_seconds for s in mine)),
        min(ratio(b.wall, b.audio_seconds) for b in passes),
        min(ratio(b.cpu_seconds, b.audio_seconds) for b in passes),
        min(ratio(b.client_cpu_seconds, b.audio_seconds) for b in passes),
    )


def table(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    samples = [Sample(**{k: v for k, v in s.items() if k != "rtf"}) for s in data["samples"]]
    batches = [Batch(**b) for b in data["batches"]]
    raw = summarise(samples, batches, "raw", 1)
    rows = [raw]
    for mode in ("sse", "audio"):
        rows += [summarise(samples, batches, mode, c) for c in data["options"]["clients"]]
    single = {row.mode: row for row in rows if row.clients == 1}
    lines, verdicts = [], []
    for row in rows:
        checks = targets(row, raw, single[row.mode])
        verdicts.append({"mode": row.mode, "clients": row.clients, **asdict(row), **checks})
        lines.append(table_line(row, raw, checks))
    headers = [
        "mode", "clients", "TTFA p50 ms", "TTFA p90 ms", "RTF", "throughput RTF", "CPU RTF",
        "TTFA overhead ms", "RTF ratio", "CPU ratio", "targets",
    ]  # fmt: skip
    return markdown_table(headers, lines), verdicts


def targets(row: Row, raw: Row, single: Row) -> dict[str, Any]:
    """RTF (throughput) within 10% of raw. TTFA p50: 1 client at most 50 ms over raw; more
    clients within 2x the 1-client figure of the same mode."""
    if row.mode == "raw":
        return {}
    rtf_ok = row.throughput_rtf <= raw.throughput_rtf * 1.10
    if row.clients == 1:
        return {"ttfa_overhead_ok": row.ttfa_p50 - raw.ttfa_p50 <= 50, "rtf_ok": rtf_ok}
    return {"ttfa_vs_single_ok": row.ttfa_p50 <= 2 * single.ttfa_p50, "rtf_ok": rtf_ok}


def table_line(row: Row, raw: Row, checks: dict[str, Any]) -> list[str]:
    overhead = row.ttfa_p50 - raw.ttfa_p50
    rtf_ratio = ratio(row.throughput_rtf, raw.throughput_rtf)
    names = {
        "ttfa_overhead_ok": "TTFA +50 ms",
        "rtf_ok": "RTF +10%",
        "ttfa_vs_single_ok": "TTFA ≤2× 1-client",
    }
    shown = ", ".join(f"{names[k]} {verdict(v)}" for k, v in checks.items()) or "baseline"
    return [
        row.mode,
        str(row.clients),
        fmt(row.ttfa_p50),
        fmt(row.ttfa_p90),
        fmt(row.rtf, 3),
        fmt(row.throughput_rtf, 3),
        fmt(row.cpu_rtf, 3),
        "–" if row.mode == "raw" else f"{overhead:+.0f}",
        "–" if row.mode == "raw" else f"{rtf_ratio:.3f}",
        "–" if row.mode == "raw" else f"{ratio(row.cpu_rtf, raw.cpu_rtf):.3f}",
        shown,
    ]


def markdown(data: dict[str, Any], body: str) -> str:
    loads = ", ".join(f"{snap['loadavg'][0]:.2f}" for snap in data["load"])
    audio = statistics.fmean(s["audio_seconds"] for s in data["samples"] if s["mode"] == "raw")
    chars = ", ".join(str(t["chars"]) for t in data["texts"].values())
    options = data["options"]
    note = (
        f"{len(data['texts'])} texts ({chars} characters, mean {audio:.1f} s of audio), "
        f"{options['repeat']} measured passes after {options['warmup']} warm-up; clients send "
        f"them {ORDER_NOTES[options['order']]}. RTF: per request (sum of wall times over sum "
        "of audio). Throughput RTF: the best pass's wall time over all the audio made in it "
        "(load from others only adds time); RTF ratio is its ratio to raw. CPU RTF: CPU "
        "seconds per audio second (best pass) of the side doing the work (raw: the benchmark "
        "process; else the server process). 1-minute load average at start/after warm-up/end: "
        f"{loads}. Commit {data['machine']['git_commit']}."
    )
    title = f"### Speech: {data['voice']} ({data['machine']['cpus']} CPUs)"
    return "\n".join([title, "", body, "", note])
