"""Remote engines over a pool of servers: one engine to the manager, many backends behind it.

Each pooled engine keeps the name of the single-server engine (``remote-tts``, ``remote-stt``,
``remote-chat``), so model and voice ids do not change when a second server is added. Its
``max_concurrency`` is the pool's total capacity; ``engines.pool`` routes each call (fewest in
flight, health, one retry) and these classes add what is particular to a kind:

    PooledTTSEngine    a cloned voice goes back to the server that last spoke it
    PooledSTTEngine    a realtime session stays on the server it started on
    PooledChatEngine   plain routing

All backends of a pool are taken to serve the same model: capabilities (voices, languages) come
from the first healthy one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Generic, TypeVar

from websockets.sync.client import ClientConnection

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.pool import Backend, BackendPool, state_key
from voxserve.engines.protocol import (
    ChatCapabilities,
    ChatDelta,
    ChatRequest,
    Segment,
    STTCapabilities,
    SynthesisRequest,
    TranscriptionInfo,
    TranscriptionOptions,
    TTSCapabilities,
)
from voxserve.engines.remote_chat import RemoteChatEngine
from voxserve.engines.remote_realtime import RemoteRealtimeStream
from voxserve.engines.remote_stt import RemoteSTTEngine
from voxserve.engines.remote_tts import RemoteTTSEngine
from voxserve.engines.streaming import STTStream, stream_over_batch

R = TypeVar("R", RemoteTTSEngine, RemoteSTTEngine, RemoteChatEngine)


class _Pooled(Generic[R]):
    """What every pooled engine shares: load, unload and health over all backends."""

    def __init__(self, pool: BackendPool[R]) -> None:
        self.pool: BackendPool[R] = pool
        first = pool.backends[0].engine
        self.name = first.name
        self.version = first.version
        self._caps: tuple[Any, Any] | None = None

    def load(self) -> None:
        """Load every backend (a remote speech engine asks for its voices; an unreachable one
        does not raise)."""
        for backend in self.pool.backends:
            backend.engine.load()

    def unload(self) -> None:
        for backend in self.pool.backends:
            backend.engine.unload()

    def check_health(self) -> None:
        """Check every backend (see ``BackendPool.check_health``)."""
        self.pool.check_health()

    def backend_status(self) -> list[dict[str, object]]:
        """Per backend: url, healthy, in_flight, capacity (for readiness and metrics)."""
        return self.pool.status()

    def close(self) -> None:
        """Close the pool's health-check clients (at shutdown; see ``HealthChecked.close``)."""
        self.pool.close()

    def _pooled_caps(self, caps: Any) -> Any:
        # Rebuilt only when the backend's own capabilities change (they are compared often).
        cached = self._caps
        if cached is None or cached[0] is not caps:
            cached = self._caps = (caps, replace(caps, max_concurrency=self.pool.capacity))
        return cached[1]


class PooledTTSEngine(_Pooled[RemoteTTSEngine]):
    """Speech over a pool of ``/audio/speech`` servers.

    A cloned voice's state is sent with every request; a server that has seen it may keep what
    it computed from it, so the server that last spoke a voice state is preferred for it.
    """

    def capabilities(self) -> TTSCapabilities:
        caps: TTSCapabilities = self._pooled_caps(self.pool.first_healthy().engine.capabilities())
        return caps

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        key = None if request.voice_state is None else state_key(request.voice_state)
        return self.pool.stream(lambda engine: engine.synthesize(request), key=key)

    def clone_voice(self, reference: AudioClip) -> bytes:
        # Made here, not remotely (the state is the clip itself): any backend's engine will do.
        return self.pool.backends[0].engine.clone_voice(reference)


class PooledSTTEngine(_Pooled[RemoteSTTEngine]):
    """Transcription over a pool of ``/audio/transcriptions`` servers. A realtime session
    (``open_stream``) sends every decode to the server it started on while that one is up."""

    def capabilities(self) -> STTCapabilities:
        caps: STTCapabilities = self._pooled_caps(self.pool.first_healthy().engine.capabilities())
        return caps

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        result, _ = self.pool.run(lambda engine: engine.transcribe(audio, options))
        return result

    def open_stream(self, options: TranscriptionOptions) -> STTStream:
        """A realtime stream (LocalAgreement over batch decodes) pinned to one backend.

        Raises:
            Unsupported: the servers are set up without word timestamps.
        """
        first = self.pool.backends[0].engine
        if first.realtime:  # a socket on one backend, chosen once (fewest in flight, healthy)
            lease = _SocketLease(self.pool)
            return RemoteRealtimeStream(
                lease.connect,
                first.model,
                timeout=first.timeout,
                language=options.language,
                on_close=lease.release,
            )
        caps = self.capabilities()
        return stream_over_batch(
            self.name,
            _Pinned(self.pool),
            word_timestamps=caps.word_timestamps,
            sample_rate=caps.sample_rate,
            options=options,
        )


class _SocketLease:
    """A realtime session's socket and its backend's lease, held from connect to close, so the
    pool counts the open session against that backend's capacity."""

    def __init__(self, pool: BackendPool[RemoteSTTEngine]) -> None:
        self._pool = pool
        self._backend: Backend[RemoteSTTEngine] | None = None

    def connect(self) -> ClientConnection:
        socket, self._backend = self._pool.hold(lambda engine: engine.connect_realtime())
        return socket

    def release(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            self._pool.release(backend)


class _Pinned:
    """One session's decode function: the first call picks a backend, later calls prefer it
    (and move, once, to another only when it fails or is full)."""

    def __init__(self, pool: BackendPool[RemoteSTTEngine]) -> None:
        self._pool = pool
        self.backend: Backend[RemoteSTTEngine] | None = None

    def __call__(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        result, self.backend = self._pool.run(
            lambda engine: engine.transcribe(audio, options), prefer=self.backend
        )
        return result


class PooledChatEngine(_Pooled[RemoteChatEngine]):
    """Chat over a pool of ``/chat/completions`` servers."""

    def capabilities(self) -> ChatCapabilities:
        caps: ChatCapabilities = self._pooled_caps(self.pool.first_healthy().engine.capabilities())
        return caps

    def count_tokens(self, request: ChatRequest) -> int:
        """The same estimate as a single remote (it never asks the network)."""
        return self.pool.backends[0].engine.count_tokens(request)

    def complete(self, request: ChatRequest) -> Iterator[ChatDelta]:
        return self.pool.stream(lambda engine: engine.complete(request))
