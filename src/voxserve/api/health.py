"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voxserve.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and its event loop answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Storage answers; lists the engines and their load and queue state."""
    body: dict[str, Any] = {"engines": services.engines.status()}
    try:
        await services.storage.keys.count_active_keys()
        body["status"] = "ready"
        status = 200
    except Exception as exc:  # any storage failure means not ready
        body.update(status="unavailable", reason=type(exc).__name__)
        status = 503
    return JSONResponse(body, status_code=status)
