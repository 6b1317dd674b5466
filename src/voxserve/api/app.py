"""The FastAPI application: ``create_app(settings)`` is the server's composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

import voxserve
from voxserve.api import chat, health, models, speech, transcriptions, usage
from voxserve.api.adapters.mistral import files as mistral_files
from voxserve.api.adapters.mistral import voices as mistral_voices
from voxserve.api.adapters.tts_gateway import errors as tts_gateway_errors
from voxserve.api.adapters.tts_gateway import router as tts_gateway
from voxserve.api.adapters.voice_cloning import errors as voice_cloning_errors
from voxserve.api.adapters.voice_cloning import router as voice_cloning
from voxserve.api.errors import ErrorShapes, install_error_handlers
from voxserve.api.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
)
from voxserve.bootstrap import Services, ensure_safe_to_serve, open_services
from voxserve.core.engine_report import better_engine_hints as engine_hints_for
from voxserve.core.engine_report import engine_report
from voxserve.engines.registry import Engine, engines_to_preload
from voxserve.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, engines: Sequence[Engine] | None = None) -> FastAPI:
    """Build the app. Nothing is opened until the lifespan starts.

    Args:
        settings: the configuration (built once by the CLI or the caller).
        engines: engines to serve instead of the discovered ones (tests pass fakes).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            services = await stack.enter_async_context(open_services(settings, engines=engines))
            await ensure_safe_to_serve(services)
            app.state.services = services
            log_engines(services)
            jobs = (
                run_cleanup(services),
                services.engines.run_unloader(),
                services.engines.preload(engines_to_preload(settings)),
            )
            for job in jobs:
                stack.callback(asyncio.create_task(job).cancel)
            yield

    app = FastAPI(
        title="voxserve",
        version=voxserve.__version__,
        description="Self-hosted speech API: Mistral- and OpenAI-compatible.",
        lifespan=lifespan,
    )
    shapes = ErrorShapes()
    shapes.register("tts_gateway", tts_gateway.PREFIX, tts_gateway_errors.render)
    shapes.register("voice_cloning", voice_cloning.PREFIX, voice_cloning_errors.render)
    install_error_handlers(app, shapes)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.limits.max_request_bytes,
        max_upload_bytes=settings.limits.max_upload_bytes,
        shapes=shapes,
    )
    app.add_middleware(UnexpectedErrorMiddleware, shapes=shapes)
    app.add_middleware(usage.UsageMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(mistral_voices.router)
    app.include_router(speech.router)
    app.include_router(transcriptions.router)
    app.include_router(mistral_files.router)
    app.include_router(chat.router)
    app.include_router(models.router)
    app.include_router(tts_gateway.router)
    app.include_router(voice_cloning.router)
    app.include_router(usage.router)
    return app


async def run_cleanup(services: Services) -> None:
    """Purge deleted and expired objects now and then, for as long as the server runs."""
    interval = services.settings.retention.cleanup_interval_seconds
    while True:
        try:
            await services.cleanup.run_once()
        except Exception:
            log.exception("cleanup failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)


def log_engines(services: Services) -> None:
    """Say which engines serve which voices and models, and how to get better ones."""
    report = engine_report(services.engines, services.choice)
    for warning in report.warnings:
        log.warning(warning)
    for line in report.lines:
        log.info(line)


def better_engine_hints(services: Services) -> list[str]:
    """What to install for what is missing."""
    return engine_hints_for(services.engines)
