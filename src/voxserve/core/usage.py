"""Credits and usage records for every API shape.

One character synthesised is one credit; transcription and chat are metered in audio seconds
and tokens. Credits are reserved before work starts and refunded when it fails, so a failed
request costs nothing and concurrent requests cannot overspend a balance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from voxserve.core.ids import utcnow
from voxserve.errors import PaymentRequired, VoxError
from voxserve.storage.protocol import UsageRecord, UsageRepository

log = logging.getLogger(__name__)


@dataclass
class Metering:
    """Filled in by the work inside ``UsageService.metered``; recorded when it ends."""

    engine: str | None = None
    characters: int = 0
    audio_seconds: float = 0.0
    tokens: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class UsageService:
    def __init__(self, repo: UsageRepository) -> None:
        self._repo = repo

    async def reserve(self, owner_id: str, credits: int) -> None:
        """Take ``credits`` from the owner's balance.

        Raises:
            PaymentRequired: the balance is smaller than ``credits``.
        """
        if credits > 0 and not await self._repo.reserve_credits(owner_id, credits):
            raise PaymentRequired(
                f"Not enough credits: this request needs {credits}. Ask the server's "
                "administrator to top up your balance."
            )

    async def refund(self, owner_id: str, credits: int) -> None:
        if credits > 0:
            await asyncio.shield(self._repo.refund_credits(owner_id, credits))

    @asynccontextmanager
    async def metered(
        self, owner_id: str, endpoint: str, *, credits: int = 0
    ) -> AsyncIterator[Metering]:
        """Reserve ``credits``, run the work, then record usage; refund if the work fails."""
        await self.reserve(owner_id, credits)
        meter = Metering()
        status = 200
        try:
            yield meter
        except BaseException as exc:
            status = (
                exc.status
                if isinstance(exc, VoxError)
                else 499
                if isinstance(exc, asyncio.CancelledError | GeneratorExit)
                else 500
            )
            await self.refund(owner_id, credits)
            raise
        finally:
            await asyncio.shield(self._record(owner_id, endpoint, meter, status, credits))

    async def _record(
        self, owner_id: str, endpoint: str, meter: Metering, status: int, credits: int
    ) -> None:
        ok = status == 200
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
        try:
            await self._repo.record(record)
        except Exception:
            log.exception("could not record usage")
