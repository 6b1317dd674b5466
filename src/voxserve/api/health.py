"""Liveness and readiness."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from voxserve.api.deps import AuthServiceDep, DecodeStateDep, EngineStatusDep

router = APIRouter(tags=["health"])


class Draining:
    """Whether the server is shutting down: set on SIGTERM, before it stops accepting
    connections, so ``/ready`` answers 503 first and a load balancer stops sending requests."""

    def __init__(self) -> None:
        self.started = False

    def begin(self) -> None:
        self.started = True


def draining(request: Request) -> bool:
    state: Draining | None = getattr(request.app.state, "draining", None)
    return state is not None and state.started


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


class DecodeState(BaseModel):
    """The decode pool: uploaded and fetched audio is decoded on threads of its own."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    active: int
    """Decodes running."""
    waiting: int
    """Decodes waiting for a thread."""
    limit: int
    """Decodes run at once."""
    queue: int
    """Decodes that may wait before new ones answer 429."""
    saturated: bool
    """New decodes are refused (429) now: the server is not ready for more audio."""


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
                    "decoding": {
                        "active": 0,
                        "waiting": 0,
                        "limit": 2,
                        "queue": 8,
                        "saturated": False,
                    },
                }
            ]
        },
    )

    status: Literal["ready", "saturated", "unavailable", "draining"]
    """``saturated`` (503): the decode pool refuses new audio; ``unavailable`` (503): storage
    does not answer; ``draining`` (503): the server is shutting down (in-flight requests
    finish, new ones should go elsewhere)."""
    engines: list[EngineState]
    decoding: DecodeState
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
    responses={
        503: {
            "model": Readiness,
            "description": "Storage does not answer, decoding is full, or shutting down.",
        }
    },
)
async def ready(
    request: Request,
    auth: AuthServiceDep,
    engine_status: EngineStatusDep,
    decode_state: DecodeStateDep,
) -> JSONResponse:
    """Storage answers and the decode pool takes new audio; lists the engines and their load
    and queue state, and the decode pool's. 503 from the moment a shutdown begins."""
    engines = states(engine_status())
    decoding = DecodeState.model_validate(decode_state(), from_attributes=True)
    if draining(request):
        body = Readiness(status="draining", engines=engines, decoding=decoding)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    try:
        await auth.keyless()  # reads the key table: storage answers
        status: Literal["ready", "saturated"] = "saturated" if decoding.saturated else "ready"
        body = Readiness(status=status, engines=engines, decoding=decoding)
    except Exception as exc:  # any storage failure means not ready
        reason = type(exc).__name__
        body = Readiness(status="unavailable", engines=engines, decoding=decoding, reason=reason)
    status_code = 200 if body.status == "ready" else 503
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status_code)


def states(status: list[dict[str, Any]]) -> list[EngineState]:
    return [EngineState.model_validate(s) for s in status]
