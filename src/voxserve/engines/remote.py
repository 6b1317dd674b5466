"""Engines that forward to remote OpenAI-compatible servers (vLLM, vLLM-Omni, llama.cpp server,
Ollama, OpenAI): speech, transcription and chat. Each lives in its own module; this one gathers
them for the composition root.

    RemoteTTSEngine   POST {base}/audio/speech           (remote_tts)
    RemoteSTTEngine   POST {base}/audio/transcriptions   (remote_stt)
    RemoteChatEngine  POST {base}/chat/completions       (remote_chat)
    RemoteServer      the shared httpx client and error mapping (remote_http)
"""

from voxserve.engines.remote_chat import RemoteChatEngine
from voxserve.engines.remote_http import RemoteServer, RemoteStatusError, RemoteUnreachable
from voxserve.engines.remote_stt import RemoteSTTEngine
from voxserve.engines.remote_tts import RemoteTTSEngine

__all__ = [
    "RemoteChatEngine",
    "RemoteSTTEngine",
    "RemoteServer",
    "RemoteStatusError",
    "RemoteTTSEngine",
    "RemoteUnreachable",
]
