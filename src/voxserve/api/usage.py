"""Usage over HTTP: ``GET /v1/usage``, the owner's credits, totals and records (metering itself
is declared by the routes: see ``api.deps.metered``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from voxserve.api.deps import CurrentOwner, UsageServiceDep
from voxserve.core.ids import iso
from voxserve.core.types import UsageRecord, UsageTotals

router = APIRouter(tags=["usage"])


class UsageSums(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    requests: int
    characters: int
    """Characters synthesised (one credit each)."""
    audio_seconds: float
    """Seconds of audio transcribed."""
    tokens: int
    """Chat tokens, prompt and completion."""
    credits: int


class UsagePeriod(UsageSums):
    start: str
    """Start of the UTC day or month, ISO-8601."""


class UsageEntry(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    endpoint: str
    """The operation: ``speech``, ``transcription`` or ``chat``."""
    engine: str | None
    status: int
    """The HTTP status the request ended with (499: the client went away)."""
    characters: int
    audio_seconds: float
    tokens: int
    credits: int
    created_at: str


class UsageResponse(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "object": "usage",
                    "owner_id": "owner-1a2b",
                    "balance": 9000,
                    "period": "day",
                    "totals": {
                        "requests": 3,
                        "characters": 1000,
                        "audio_seconds": 12.5,
                        "tokens": 0,
                        "credits": 1000,
                    },
                    "periods": [
                        {
                            "start": "2026-01-01T00:00:00Z",
                            "requests": 3,
                            "characters": 1000,
                            "audio_seconds": 12.5,
                            "tokens": 0,
                            "credits": 1000,
                        }
                    ],
                    "records": [
                        {
                            "endpoint": "speech",
                            "engine": "piper",
                            "status": 200,
                            "characters": 1000,
                            "audio_seconds": 0.0,
                            "tokens": 0,
                            "credits": 1000,
                            "created_at": "2026-01-01T12:00:00Z",
                        }
                    ],
                }
            ]
        },
    )

    object: Literal["usage"] = "usage"
    owner_id: str
    balance: int | None
    """Credits left; null is unlimited."""
    period: Literal["day", "month"]
    totals: UsageSums
    """Over the whole range (every request ever without ``since``/``until``)."""
    periods: list[UsagePeriod]
    records: list[UsageEntry]
    """The newest records in the range, newest first."""


@router.get("/v1/usage", response_model=UsageResponse)
async def get_usage(
    owner: CurrentOwner,
    service: UsageServiceDep,
    period: Literal["day", "month"] = "day",
    since: Annotated[datetime | None, Query(description="Start (inclusive), UTC.")] = None,
    until: Annotated[datetime | None, Query(description="End (exclusive), UTC.")] = None,
    limit: Annotated[int, Query(ge=0, le=1000, description="Records to list.")] = 100,
) -> UsageResponse:
    """The owner's credit balance, usage totals overall and per day or month, and records."""
    report = await service.report(
        owner.id, since=utc(since), until=utc(until), period=period, limit=limit
    )
    return UsageResponse(
        owner_id=owner.id,
        balance=report.balance,
        period=period,
        totals=UsageSums(**sums(report.totals)),
        periods=[usage_period(p) for p in report.periods],
        records=[entry(r) for r in report.records],
    )


def utc(ts: datetime | None) -> datetime | None:
    """Naive times are taken as UTC."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


def usage_period(totals: UsageTotals) -> UsagePeriod:
    """One day's or month's sums (only the overall total lacks a start)."""
    start = iso(totals.period_start) if totals.period_start else ""
    return UsagePeriod(start=start, **sums(totals))


def sums(totals: UsageTotals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "characters": totals.characters,
        "audio_seconds": round(totals.audio_seconds, 3),
        "tokens": totals.tokens,
        "credits": totals.credits,
    }


def entry(record: UsageRecord) -> UsageEntry:
    return UsageEntry(
        endpoint=record.endpoint,
        engine=record.engine,
        status=record.status,
        characters=record.characters,
        audio_seconds=record.audio_seconds,
        tokens=record.tokens,
        credits=record.credits,
        created_at=iso(record.created_at),
    )
