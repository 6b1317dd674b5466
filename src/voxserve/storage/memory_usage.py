"""Usage records and credit balances in memory: the ``UsageRepository`` of ``storage.memory``.

A reservation checks and takes the balance under the state's lock, so concurrent reservations
can never overdraw it.
"""

from __future__ import annotations

import builtins
import dataclasses
from datetime import UTC, datetime

from voxserve.storage.memory_state import MemoryState, utc_fields
from voxserve.storage.protocol import UsageRecord, UsageSnapshot, UsageTotals

PERIODS = ("day", "month")


class MemoryUsageRepository:
    """``UsageRepository`` in memory."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def reserve_credits(self, owner_id: str, amount: int) -> bool:
        """Take ``amount`` credits; False when the balance is too low or the owner unknown."""
        if amount < 0:
            raise ValueError("amount must not be negative")
        await self._state.turn()
        with self._state.lock:
            owner = self._state.owners.get(owner_id)
            if owner is None:
                return False
            if owner.credits is None:
                return True  # unlimited
            if owner.credits < amount:
                return False
            self._state.owners[owner_id] = dataclasses.replace(
                owner, credits=owner.credits - amount
            )
            return True

    async def refund_credits(self, owner_id: str, amount: int) -> None:
        _check(amount)
        await self._state.turn()
        with self._state.lock:
            self._refund(owner_id, amount)

    async def record(self, record: UsageRecord, *, refund: int = 0) -> None:
        """The record and its refund under one hold of the lock (``UsageRepository.record``)."""
        _check(refund)
        await self._state.turn()
        with self._state.lock:
            stored = utc_fields(record, id=next(self._state.usage_ids))
            self._refund(record.owner_id, refund)
            self._state.usage.append(stored)

    def _refund(self, owner_id: str, amount: int) -> None:
        """Give ``amount`` back; the caller holds the lock."""
        owner = self._state.owners.get(owner_id)
        if amount and owner is not None and owner.credits is not None:
            self._state.owners[owner_id] = dataclasses.replace(
                owner, credits=owner.credits + amount
            )

    async def totals(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str | None = None,
    ) -> builtins.list[UsageTotals]:
        """Totals from ``since`` (inclusive) to ``until`` (exclusive), overall or per UTC
        ``day``/``month`` (oldest period first; periods without requests are left out)."""
        with self._state.lock:
            return _grouped(self._in_range(owner_id, since, until), period)

    async def records(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[UsageRecord]:
        """The owner's newest records first, from ``since`` (inclusive) to ``until``
        (exclusive)."""
        with self._state.lock:
            return _newest(self._in_range(owner_id, since, until), limit)

    async def snapshot(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "day",
        limit: int = 100,
    ) -> UsageSnapshot | None:
        """Everything read under one hold of the lock."""
        await self._state.turn()
        with self._state.lock:
            owner = self._state.owners.get(owner_id)
            if owner is None:
                return None
            in_range = self._in_range(owner_id, since, until)
            periods = _grouped(in_range, period)
            overall = UsageTotals.total_of(periods)
            return UsageSnapshot(owner.credits, overall, periods, _newest(in_range, limit))

    def _in_range(
        self, owner_id: str, since: datetime | None, until: datetime | None
    ) -> builtins.list[UsageRecord]:
        """The caller holds the lock."""
        return [
            r
            for r in self._state.usage
            if r.owner_id == owner_id
            and (since is None or r.created_at >= since)
            and (until is None or r.created_at < until)
        ]


def _grouped(records: builtins.list[UsageRecord], period: str | None) -> builtins.list[UsageTotals]:
    if period is not None and period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS} or None, not {period!r}")
    if period is None:
        return [_totals(None, records)]
    groups: dict[datetime, builtins.list[UsageRecord]] = {}
    for record in records:
        groups.setdefault(_period_start(record.created_at, period), []).append(record)
    return [_totals(start, groups[start]) for start in sorted(groups)]


def _newest(records: builtins.list[UsageRecord], limit: int) -> builtins.list[UsageRecord]:
    ordered = sorted(records, key=lambda r: (r.created_at, r.id or 0), reverse=True)
    return ordered[: max(limit, 0)]


def _check(amount: int) -> None:
    if amount < 0:
        raise ValueError("amount must not be negative")


def _period_start(at: datetime, period: str) -> datetime:
    return datetime(at.year, at.month, at.day if period == "day" else 1, tzinfo=UTC)


def _totals(period_start: datetime | None, records: builtins.list[UsageRecord]) -> UsageTotals:
    return UsageTotals(
        period_start=period_start,
        requests=len(records),
        characters=sum(r.characters for r in records),
        audio_seconds=float(sum(r.audio_seconds for r in records)),
        tokens=sum(r.tokens for r in records),
        credits=sum(r.credits for r in records),
    )
