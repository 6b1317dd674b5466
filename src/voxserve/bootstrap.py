"""Builds the services once, from settings, for the server and for the CLI (the composition root
that both share; ``api.app.create_app`` wraps it in the server's lifespan). Tests pass fakes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from voxserve.core.auth import AuthService
from voxserve.core.chat import ChatService
from voxserve.core.cleanup import CleanupService
from voxserve.core.files import FileService
from voxserve.core.generations import GenerationService
from voxserve.core.presets import PresetCatalog
from voxserve.core.speech import SpeechService
from voxserve.core.transcription import TranscriptionService
from voxserve.core.usage import UsageService
from voxserve.core.voices import VoiceService
from voxserve.engines.manager import EngineManager
from voxserve.engines.registry import Engine, discover_engines
from voxserve.net.fetch import HttpUrlFetcher
from voxserve.settings import Settings
from voxserve.storage.protocol import Storage
from voxserve.storage.sql import open_storage

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


@asynccontextmanager
async def open_services(
    settings: Settings, *, engines: Sequence[Engine] | None = None
) -> AsyncIterator[Services]:
    """Open storage, discover (or take) the engines and build every service; close them on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    found = list(engines) if engines is not None else discover_engines(settings)
    manager = EngineManager(found, settings.engines)
    async with open_storage(settings.resolved_database_url, settings.resolved_blob_dir) as storage:
        presets = PresetCatalog(manager.tts_engines())
        voices = VoiceService(
            storage.voices, storage.blobs, presets, manager, settings.limits, settings.retention
        )
        usage = UsageService(storage.usage, storage.keys)
        files = FileService(storage.files, storage.blobs, settings.load_secret_key())
        generations = GenerationService(files, settings.retention)
        speech = SpeechService(manager, voices, storage.blobs, usage, generations, settings)
        fetcher = HttpUrlFetcher(settings.fetch)
        transcription = TranscriptionService(manager, files, fetcher, usage, settings)
        services = Services(
            settings=settings,
            storage=storage,
            engines=manager,
            auth=AuthService(storage.keys, open_when_keyless=settings.binds_loopback),
            voices=voices,
            speech=speech,
            usage=usage,
            files=files,
            generations=generations,
            transcription=transcription,
            chat=ChatService(manager, transcription, usage, settings),
            cleanup=CleanupService(
                voices, storage.voices, storage.files, storage.blobs, settings.retention
            ),
        )
        try:
            yield services
        finally:
            await manager.close()


class UnsafeStartup(RuntimeError):
    """The server would be open to the network without any API key."""


async def ensure_safe_to_serve(services: Services) -> None:
    """Refuse to serve a non-loopback address while no API key exists.

    Raises:
        UnsafeStartup: with the command that creates a key.
    """
    settings = services.settings
    if settings.binds_loopback or not await services.auth.keyless():
        return
    raise UnsafeStartup(
        f"Refusing to listen on {settings.host} without API keys: anyone on the network could use "
        "this server. Create a key first: voxserve keys create --name NAME "
        "(or bind to 127.0.0.1)."
    )
