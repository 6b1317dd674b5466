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


class Readiness(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "engines": [
                        {"name": "piper", "kind": "tts", "loaded": True, "busy": 0, "queued": 0}
                    ],
                }
            ]
        },
    )

    status: Literal["ready", "unavailable"]
    engines: list[dict[str, Any]]
    """Each engine's name, kind, whether it is loaded, and its busy and queued requests."""
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
        body = Readiness(status="ready", engines=engine_status())
    except Exception as exc:  # any storage failure means not ready
        body = Readiness(status="unavailable", engines=engine_status(), reason=type(exc).__name__)
    status = 200 if body.status == "ready" else 503
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)
