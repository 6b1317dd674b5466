"""Credits and usage records for every API shape.

One character synthesised is one credit; transcription and chat are metered in audio seconds
and tokens. Credits are reserved before work starts and refunded when it fails, so a failed
request costs nothing and concurrent requests cannot overspend a balance. A client that goes
away mid-stream is refunded only what it did not receive (``Metering.delivered_credits``).

Every metered request leaves one usage record: the work inside ``metered`` records its outcome
(a refused reservation too, with status 402); a request that fails before it reaches ``metered``
(a bad field, an unknown voice) is recorded by the API through ``record_failure``, which
``track_request`` tells apart from requests that already have their record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from voxserve.core.ids import utcnow
from voxserve.errors import NotFound, PaymentRequired, ValidationFailed, VoxError
from voxserve.metrics import Metrics
from voxserve.storage.protocol import (
    KeyRepository,
    UsageRecord,
    UsageRepository,
    UsageTotals,
)

log = logging.getLogger(__name__)


@dataclass
class Metering:
    """Filled in by the work inside ``UsageService.metered``; recorded when it ends."""

    engine: str | None = None
    characters: int = 0
    audio_seconds: float = 0.0
    tokens: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    delivered_credits: int = 0
    """Credits for output the client already received (the speech pieces sent so far): kept
    when the client goes away before the end, so hanging up never makes speech free."""
    work_credits: int = 0
    """Credits the work reserved itself and kept (a realtime speech session pays piece by
    piece, refunding what it did not deliver): recorded on top of ``credits``."""
    work_refund: int = 0
    """Credits the work reserved itself and did not keep: refunded with the record, in the same
    transaction."""


@dataclass
class RequestUsage:
    """Whether the request being served has left its usage record (see ``track_request``)."""

    recorded: bool = False


_CURRENT_REQUEST: ContextVar[RequestUsage | None] = ContextVar(
    "voxserve_request_usage", default=None
)

PERIODS = ("day", "month")


@dataclass(frozen=True)
class UsageReport:
    """An owner's usage over a time range."""

    balance: int | None
    """Credits left; None is unlimited."""
    totals: UsageTotals
    periods: list[UsageTotals]
    """Per ``day`` or ``month`` (oldest first; periods without requests left out)."""
    records: list[UsageRecord]
    """The newest records first."""


class UsageService:
    def __init__(
        self, repo: UsageRepository, keys: KeyRepository, *, metrics: Metrics | None = None
    ) -> None:
        self._metrics = metrics or Metrics()
        self._repo = repo
        self._keys = keys
        self._settling: set[asyncio.Future[None]] = set()

    async def reserve(self, owner_id: str, credits: int) -> None:
        """Take ``credits`` from the owner's balance.

        Raises:
            PaymentRequired: the balance is smaller than ``credits``.
        """
        if credits > 0 and not await self._repo.reserve_credits(owner_id, credits):
            raise _short(credits, await self.balance(owner_id))

    async def check_balance(self, owner_id: str, credits: int) -> None:
        """Refuse early, before costly preparation, when the balance cannot cover ``credits``
        now. Only ``reserve`` (inside ``metered``) takes them, safely under concurrency.

        Raises:
            PaymentRequired: the balance is smaller than ``credits``.
        """
        balance = await self.balance(owner_id) if credits > 0 else None
        if balance is not None and balance < credits:
            raise _short(credits, balance)

    async def balance(self, owner_id: str) -> int | None:
        """Credits left (None: unlimited, or no such owner)."""
        owner = await self._keys.get_owner(owner_id)
        return owner.credits if owner is not None else None

    @asynccontextmanager
    async def metered(
        self, owner_id: str, endpoint: str, *, credits: int = 0
    ) -> AsyncIterator[Metering]:
        """Reserve ``credits``, run the work, then record usage; refund if the work fails.

        Raises:
            PaymentRequired: before any work, when the balance is too small (recorded as 402).
        """
        try:
            await self.reserve(owner_id, credits)
        except PaymentRequired as refused:
            _mark_recorded()
            await asyncio.shield(self._record(owner_id, endpoint, Metering(), refused.status, 0))
            raise
        meter = Metering()
        status = 200
        charged = credits
        try:
            yield meter
        except BaseException as exc:
            gone = isinstance(exc, asyncio.CancelledError | GeneratorExit)
            status = exc.status if isinstance(exc, VoxError) else 499 if gone else 500
            # A failure of ours costs nothing; a client that hung up pays for what it received.
            charged = min(meter.delivered_credits, credits) if gone else 0
            raise
        finally:
            _mark_recorded()  # now, not in the shielded task: the request may end first
            # The refund goes with the record, in one transaction: a reader that sees the
            # record sees the refund (a refund of its own once let a report show the record
            # with the balance from before the refund). Work that paid for itself (realtime
            # speech, piece by piece) adds its kept credits to the record, not to the refund.
            refund = credits - charged + meter.work_refund
            record = self._record(
                owner_id, endpoint, meter, status, charged + meter.work_credits, refund
            )
            await self._settle(record)

    async def _settle(self, work: Coroutine[Any, Any, None]) -> None:
        """Run bookkeeping to its end even if the request is cancelled again meanwhile (a client
        that hangs up cancels its request at every later await): the work runs as its own task,
        held here until done, since the event loop keeps only weak references to tasks."""
        task = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        await asyncio.shield(task)

    async def record_failure(
        self, owner_id: str, endpoint: str, status: int, engine: str | None = None
    ) -> None:
        """Record a request that failed before any metered work (nothing is charged)."""
        await asyncio.shield(self._record(owner_id, endpoint, Metering(engine=engine), status, 0))

    async def report(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "day",
        limit: int = 100,
    ) -> UsageReport:
        """Totals overall and per ``period`` from ``since`` (inclusive) to ``until`` (exclusive),
        the newest ``limit`` records in that range, and the balance.

        Raises:
            ValidationFailed: an unknown period, a range that ends before it starts.
            NotFound: no owner has this id.
        """
        if period not in PERIODS:
            raise ValidationFailed(f"period: must be one of {', '.join(PERIODS)}.", field="period")
        if since is not None and until is not None and until <= since:
            raise ValidationFailed("until: must be after since.", field="until")
        # One snapshot: a record always comes with its settled balance (#14: a report whose
        # balance was read before a settle and its records after looked like a lost refund).
        found = await self._repo.snapshot(
            owner_id, since=since, until=until, period=period, limit=limit
        )
        if found is None:
            raise NotFound(f"Owner '{owner_id}' not found.")
        return UsageReport(found.balance, found.overall, found.periods, found.records)

    async def _record(
        self,
        owner_id: str,
        endpoint: str,
        meter: Metering,
        status: int,
        credits: int,
        refund: int = 0,
    ) -> None:
        ok = status == 200 or credits > 0  # a partial delivery records what it charged
        record = UsageRecord(
            owner_id=owner_id,
            endpoint=endpoint,
            engine=meter.engine,
            status=status,
            created_at=utcnow(),
            characters=meter.characters if ok else 0,
            audio_seconds=round(meter.audio_seconds, 3) if ok else 0.0,
            tokens=meter.tokens if ok else 0,
            credits=credits if ok else 0,
        )
        self._metrics.credits_spent(endpoint, record.credits)
        try:
            await self._repo.record(record, refund=refund)
        except Exception:
            log.exception("could not record usage (refund of %d credits included)", refund)
            await self._refund_alone(owner_id, refund)

    async def _refund_alone(self, owner_id: str, refund: int) -> None:
        """The refund without its record, when writing both failed: the reserved credits of
        undelivered work go back even if the usage line is lost."""
        if refund <= 0:
            return
        try:
            await self._repo.refund_credits(owner_id, refund)
        except Exception:
            log.exception("could not refund %d credits to %s", refund, owner_id)


def _short(credits: int, balance: int | None) -> PaymentRequired:
    return PaymentRequired(
        f"Not enough credits: this request needs {credits} (one per character) and "
        f"the balance is {balance or 0}. Nothing was generated. Ask the server's "
        "administrator to top up your balance."
    )


@contextmanager
def track_request() -> Iterator[RequestUsage]:
    """Track, for the request served inside, whether the work left its usage record.

    A context variable, so the mark reaches here from the services and from the tasks a
    streamed response runs in (they copy the context, with this same object).
    """
    tracker = RequestUsage()
    token = _CURRENT_REQUEST.set(tracker)
    try:
        yield tracker
    finally:
        _CURRENT_REQUEST.reset(token)


def _mark_recorded() -> None:
    tracker = _CURRENT_REQUEST.get()
    if tracker is not None:
        tracker.recorded = True
