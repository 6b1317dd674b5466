"""The FastAPI application: ``create_app(settings)`` is the server's composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import voxserve
from voxserve.api import health, keys, models, usage, web
from voxserve.api import metrics as metrics_api
from voxserve.api.adapters.mistral import batch as mistral_batch
from voxserve.api.adapters.mistral import client_sessions as mistral_client_sessions
from voxserve.api.adapters.mistral import realtime as mistral_realtime
from voxserve.api.adapters.mistral import realtime_speech as mistral_realtime_speech
from voxserve.api.adapters.mistral import router as mistral
from voxserve.api.adapters.mistral.batch_endpoint import ENDPOINTS as MISTRAL_BATCH_ENDPOINTS
from voxserve.api.adapters.openai import realtime as openai_realtime
from voxserve.api.adapters.openai import router as openai
from voxserve.api.adapters.tts_gateway import router as tts_gateway
from voxserve.api.adapters.voice_cloning import router as voice_cloning
from voxserve.api.browser import BrowserGuardMiddleware
from voxserve.api.deps import SESSION_COOKIE
from voxserve.api.docs import install_docs
from voxserve.api.errors import install_error_handlers
from voxserve.api.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
    WireRulesMiddleware,
)
from voxserve.api.observation import ObservationMiddleware
from voxserve.api.shapes import ShapeRegistry, error_responses, shared_router
from voxserve.bootstrap import (
    Services,
    background_jobs,
    cancel_and_wait,
    ensure_safe_to_serve,
    open_services,
)
from voxserve.core.engine_report import engine_report
from voxserve.core.types import Engine, Storage, engines_to_preload
from voxserve.settings import Settings
from voxserve.tracing import SpanExporter

DESCRIPTION = """Self-hosted speech API: Mistral- and OpenAI-compatible.

Audio formats of `POST /v1/audio/speech` (all mono):

| format | Mistral body (`voice_id`) | OpenAI body (`voice`) |
|---|---|---|
| `pcm` | raw float32 little-endian, 24 kHz | raw signed 16-bit little-endian, 24 kHz |
| `wav` | 16-bit PCM, the engine's rate | 16-bit PCM, the engine's rate |
| `mp3`, `flac`, `aac` | the engine's rate | the engine's rate |
| `opus` (Ogg) | the engine's rate, rounded up to 8, 12, 16, 24 or 48 kHz | the same |

The `/api/tts` gateway's `pcm` is float32 at the engine's rate. A request whose body is ambiguous
can name its shape with `X-Voxserve-Shape: mistral` or `openai`. Authorize with an API key
(Bearer or `x-api-key`); a server on loopback without keys needs none.
"""

log = logging.getLogger(__name__)

BATCH_ENDPOINTS = MISTRAL_BATCH_ENDPOINTS
"""What batch jobs may target, by path: the wire shapes' batch endpoints. ``serve`` and
``voxserve worker`` hand the same ones to ``open_services``."""


def create_app(
    settings: Settings,
    *,
    engines: Sequence[Engine] | None = None,
    storage: Storage | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """Build the app. Nothing is opened until the lifespan starts.

    Args:
        settings: the configuration (built once by the CLI or the caller).
        engines: engines to serve instead of the discovered ones (tests pass fakes).
        storage: a ready storage instead of the configured database (tests pass in-memory).
        span_exporter: where trace spans go instead of the configured OTLP endpoint (tests
            pass an in-memory exporter).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for warning in settings.config_warnings():
            log.warning(warning)
        async with AsyncExitStack() as stack:
            services = await stack.enter_async_context(
                open_services(
                    settings,
                    engines=engines,
                    storage=storage,
                    batch_endpoints=BATCH_ENDPOINTS,
                    span_exporter=span_exporter,
                )
            )
            await ensure_safe_to_serve(services)
            app.state.services = services
            log_engines(services)
            jobs = (
                *background_jobs(services),
                services.engines.preload(engines_to_preload(settings)),
            )
            for job in jobs:  # each stopped, and waited for, before the services close
                stack.push_async_callback(cancel_and_wait, asyncio.create_task(job))
            worker = batch_worker(services)
            if worker is not None:  # stopped (and its job handed back) before storage closes
                stack.push_async_callback(cancel_and_wait, asyncio.create_task(worker))
            yield

    app = FastAPI(
        title="voxserve",
        version=voxserve.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    shapes = ShapeRegistry(
        shared={"mistral": mistral.SHAPE, "openai": openai.SHAPE},
        prefixed=[tts_gateway.SHAPE, voice_cloning.SHAPE],
    )
    install_error_handlers(app, shapes)
    app.add_middleware(WireRulesMiddleware, shapes=shapes)  # inside the body limit
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.limits.max_request_bytes,
        max_upload_bytes=settings.limits.max_upload_bytes,
        shapes=shapes,
    )
    app.add_middleware(
        BrowserGuardMiddleware,
        shapes=shapes,
        session_cookie=SESSION_COOKIE,
        allowed_origins=settings.web.cors_origins,
    )
    if settings.web.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.web.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "x-api-key", "content-type", "x-voxserve-shape"],
            expose_headers=["x-request-id", "retry-after"],
        )
    app.add_middleware(UnexpectedErrorMiddleware, shapes=shapes)
    app.add_middleware(RequestContextMiddleware)
    # outermost: its span covers all; it counts requests only when metrics are enabled
    app.add_middleware(ObservationMiddleware, shapes=shapes, count=settings.metrics.enabled)
    app.include_router(shared_router(shapes))
    for router, shape in (
        (health.router, shapes.default_shape),
        (mistral.router, mistral.SHAPE),
        (mistral_client_sessions.router, mistral.SHAPE),
        (mistral_batch.router, mistral.SHAPE),
        (openai.router, openai.SHAPE),
        (models.router, shapes.default_shape),
        (tts_gateway.router, tts_gateway.SHAPE),
        (voice_cloning.router, voice_cloning.SHAPE),
        (usage.router, shapes.default_shape),
        (keys.router, shapes.default_shape),
        (web.router, shapes.default_shape),
        *([(metrics_api.router, shapes.default_shape)] if settings.metrics.enabled else []),
    ):
        app.include_router(router, responses=error_responses(shape))
    app.include_router(mistral_realtime.router)
    app.include_router(mistral_realtime_speech.router)
    app.include_router(openai_realtime.router)
    if settings.web.enabled:
        web.install_web(app)
    install_docs(app)
    app.state.draining = health.Draining()
    return app


def batch_worker(services: Services) -> Coroutine[Any, Any, None] | None:
    """The batch worker ``serve`` runs (``VOXSERVE_BATCH__RUN_IN_SERVE``; on by default on
    PostgreSQL), or None."""
    if services.batch is None or not services.settings.runs_batch_in_serve:
        return None
    return services.batch.run_worker()


def log_engines(services: Services) -> None:
    """Say which engines serve which voices and models, and how to get better ones."""
    report = engine_report(services.engines, services.choice)
    for warning in report.warnings:
        log.warning(warning)
    for line in report.lines:
        log.info(line)
