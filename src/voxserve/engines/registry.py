"""Finds the engines this installation can run, best first within each kind.

Built-in engines (espeak, pocketsphinx) are always there; neural engines appear when their weights
are in the models folder; remote engines when their URL is configured. Discovery only looks at
files and settings: weights load lazily on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from voxserve.engines.protocol import ChatEngine, STTEngine, TTSEngine
from voxserve.settings import RemoteKind, Settings

log = logging.getLogger(__name__)

Engine = TTSEngine | STTEngine | ChatEngine


def discover_engines(settings: Settings) -> list[Engine]:
    """Every available engine: remote first (GPU servers), then local neural, then built-in."""
    return [*_tts(settings), *_stt(settings), *_chat(settings)]


def engines_to_preload(settings: Settings) -> list[str]:
    """What the server loads as it starts: the configured ``preload`` list, plus the remote speech
    engine (its load only asks the remote for its voices, which the voice list then shows)."""
    names = list(settings.engines.preload)
    if settings.remote.tts_url:
        from voxserve.engines.remote import RemoteTTSEngine

        names.append(RemoteTTSEngine.name)
    return list(dict.fromkeys(names))


def _tts(settings: Settings) -> list[Engine]:
    from voxserve.engines.espeak import EspeakEngine
    from voxserve.engines.piper import PiperEngine
    from voxserve.engines.pocket_tts import PocketTTSEngine

    found: list[Engine] = []
    remote = settings.remote
    if remote.tts_url:
        from voxserve.engines.remote import RemoteTTSEngine
        from voxserve.engines.remote_pool import PooledTTSEngine

        def tts(url: str, api_key: str | None, capacity: int) -> RemoteTTSEngine:
            return RemoteTTSEngine(
                base_url=url,
                model=remote.tts_model,
                api_key=api_key,
                timeout=remote.timeout_seconds,
                sample_rate=remote.tts_sample_rate,
                voices=remote.tts_voices,
                languages=remote.tts_languages,
                cloning=remote.tts_cloning,
                max_concurrency=capacity,
            )

        found.append(_remote(settings, "tts", tts, PooledTTSEngine))
    pocket = PocketTTSEngine.discover(settings.resolved_models_dir)
    if pocket is not None:
        found.append(pocket)
    piper = PiperEngine.discover(settings.resolved_models_dir)
    if piper is not None:
        found.append(piper)
    found.append(EspeakEngine())
    return found


def _stt(settings: Settings) -> list[Engine]:
    from voxserve.engines.faster_whisper import FasterWhisperEngine
    from voxserve.engines.worker_process import ProcessSTTEngine

    found: list[Engine] = []
    remote = settings.remote
    if remote.stt_url:
        from voxserve.engines.remote import RemoteSTTEngine
        from voxserve.engines.remote_pool import PooledSTTEngine

        def stt(url: str, api_key: str | None, capacity: int) -> RemoteSTTEngine:
            return RemoteSTTEngine(
                base_url=url,
                model=remote.stt_model,
                api_key=api_key,
                timeout=remote.timeout_seconds,
                max_concurrency=capacity,
            )

        found.append(_remote(settings, "stt", stt, PooledSTTEngine))
    for whisper in FasterWhisperEngine.discover(settings.resolved_models_dir):
        whisper.device = settings.engines.device_for(whisper.name, "faster-whisper")
        whisper.compute_type = settings.engines.compute_type_for(whisper.name, "faster-whisper")
        found.append(whisper)
    # It holds the GIL while decoding: a worker process keeps the event loop free (#14 item 5).
    found.append(ProcessSTTEngine("voxserve.engines.pocketsphinx:PocketsphinxEngine"))
    return found


def _chat(settings: Settings) -> list[Engine]:
    from voxserve.engines.llama_cpp import LlamaCppEngine

    found: list[Engine] = []
    remote = settings.remote
    if remote.chat_url:
        from voxserve.engines.remote import RemoteChatEngine
        from voxserve.engines.remote_pool import PooledChatEngine

        def chat(url: str, api_key: str | None, capacity: int) -> RemoteChatEngine:
            return RemoteChatEngine(
                base_url=url,
                model=remote.chat_model,
                api_key=api_key,
                timeout=remote.timeout_seconds,
                audio_native=remote.chat_audio_native,
                context_length=remote.chat_context_length,
                max_concurrency=capacity,
            )

        found.append(_remote(settings, "chat", chat, PooledChatEngine))
    for llama in LlamaCppEngine.discover(settings.resolved_models_dir):
        llama.device = settings.engines.device_for(llama.name, "llama-cpp")
        found.append(llama)
    return found


_LABELS: dict[RemoteKind, str] = {"tts": "speech", "stt": "transcription", "chat": "chat"}


def _remote(
    settings: Settings,
    kind: RemoteKind,
    make: Callable[[str, str | None, int], Any],
    pooled: Callable[[Any], Any],
) -> Any:
    """One remote engine for a single URL (as before pools), else a pooled one over a
    ``BackendPool`` with one engine per configured server."""
    from voxserve.engines.pool import Backend, BackendPool
    from voxserve.engines.remote import RemoteServer

    remote = settings.remote
    backends = remote.backends(kind)
    if backends is None:
        url = {"tts": remote.tts_url, "stt": remote.stt_url, "chat": remote.chat_url}[kind]
        return make(str(url), remote.api_key, 4)
    members = []
    for backend in backends:
        api_key = backend.api_key or remote.api_key
        health = RemoteServer(backend.url, api_key=api_key, timeout=remote.health_timeout_seconds)
        engine = make(backend.url, api_key, backend.capacity)
        members.append(Backend(backend.url, engine, backend.capacity, health))
    pool = BackendPool(
        members,
        label=f"remote {_LABELS[kind]}",
        retry_after=settings.engines.retry_after_seconds,
    )
    return pooled(pool)
