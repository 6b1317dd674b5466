"""Liveness and readiness."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from voxserve.api.deps import AuthServiceDep, EngineStatusDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True, json_schema_extra={"examples": [{"status": "ok"}]}
    )

    status: Literal["ok"] = "ok"


class EngineState(BaseModel):
    """One engine's load and queue state."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="allow")

    name: str
    kind: str
    """``tts``, ``stt`` or ``chat``."""
    loaded: bool
    active: int
    """Requests it works on now."""
    waiting: int
    """Requests queued for it."""
    limit: int
    """How many it works on at once."""


class Readiness(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "engines": [
                        {
                            "name": "piper",
                            "kind": "tts",
                            "loaded": True,
                            "active": 0,
                            "waiting": 0,
                            "limit": 1,
                        }
                    ],
                }
            ]
        },
    )

    status: Literal["ready", "unavailable"]
    engines: list[EngineState]
    reason: str | None = None
    """Why storage does not answer (the error's type), when unavailable."""


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up and its event loop answers."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses={503: {"model": Readiness, "description": "Storage does not answer."}},
)
async def ready(auth: AuthServiceDep, engine_status: EngineStatusDep) -> JSONResponse:
    """Storage answers; lists the engines and their load and queue state."""
    try:
        await auth.keyless()  # reads the key table: storage answers
        body = Readiness(status="ready", engines=states(engine_status()))
    except Exception as exc:  # any storage failure means not ready
        reason = type(exc).__name__
        body = Readiness(status="unavailable", engines=states(engine_status()), reason=reason)
    status = 200 if body.status == "ready" else 503
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


def states(status: list[dict[str, Any]]) -> list[EngineState]:
    return [EngineState.model_validate(s) for s in status]
