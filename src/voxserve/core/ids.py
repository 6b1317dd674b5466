"""Identifiers and clocks."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime


def uuid7() -> str:
    """A time-ordered UUIDv7 string (Mistral's custom voice ids look like these)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def prefixed_id(prefix: str) -> str:
    """``file-<hex>``-style ids for objects whose APIs use them."""
    return f"{prefix}-{uuid.uuid4().hex}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO-8601 with ``Z`` for UTC (``2025-01-02T03:04:05.123456Z``), as the wire APIs write it."""
    return ts.isoformat().replace("+00:00", "Z")
