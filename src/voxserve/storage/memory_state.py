"""The shared state of the in-memory repositories (``storage.memory``): their rows, the one lock
that guards them all, and the UTC rules the SQL column type applies."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from datetime import UTC, datetime
from typing import Any, TypeVar

from voxserve.storage.protocol import (
    ApiKey,
    FileRecord,
    Owner,
    UsageRecord,
    VoiceRecord,
    WebSession,
)

R = TypeVar("R")


def utc(value: datetime) -> datetime:
    """``value`` in UTC; raises ValueError for a naive datetime (a bug, as in SQL storage)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware values")
    return value.astimezone(UTC)


def utc_fields(record: R, **changes: Any) -> R:
    """A copy of a record dataclass with ``changes`` applied and every datetime field in UTC.

    Raises:
        ValueError: a naive datetime.
    """
    updated: Any = dataclasses.replace(record, **changes)  # type: ignore[type-var]
    in_utc = {
        field.name: utc(value)
        for field in dataclasses.fields(updated)
        if isinstance(value := getattr(updated, field.name), datetime)
    }
    result: R = dataclasses.replace(updated, **in_utc)
    return result


class MemoryState:
    """The rows of every in-memory repository and the one lock that guards them all.

    Methods hold ``lock`` only around synchronous code (never across an ``await``), so it can be
    a ``threading.Lock``: safe within one event loop and across threads.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owners: dict[str, Owner] = {}
        self.keys: dict[str, tuple[ApiKey, str]] = {}
        """Keys by id, each with its hash."""
        self.voices: dict[str, VoiceRecord] = {}
        self.files: dict[str, FileRecord] = {}
        self.sessions: dict[str, WebSession] = {}
        self.usage: list[UsageRecord] = []
        self.usage_ids = itertools.count(1)

    async def turn(self) -> None:
        """Give other tasks a turn, as a database round trip would, before taking the lock."""
        await asyncio.sleep(0)
