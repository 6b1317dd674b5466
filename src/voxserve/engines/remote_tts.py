"""Speech from a remote OpenAI-compatible ``/audio/speech`` server (vLLM-Omni, OpenAI, ...).

The remote answers ``response_format=pcm``: signed 16-bit little-endian mono at 24 kHz (OpenAI's
meaning, and vLLM-Omni's for Voxtral). The body is read as it arrives and turned into float32
chunks, so the first audio goes out before the remote has finished.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np

from voxserve.audio.process import to_mono_wav
from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.protocol import PresetVoice, SynthesisRequest, TTSCapabilities
from voxserve.engines.remote_http import RemoteServer, RemoteStatusError
from voxserve.errors import EngineFailure, Unsupported

_READ_BYTES = 4800
"""Body bytes per read: 100 ms of 24 kHz s16 audio, small enough to stream promptly."""
_VOICES_RETRY_SECONDS = 30.0


class Pcm16Decoder:
    """Turns a byte stream of s16le samples into float32 chunks.

    Network reads split the stream anywhere, also inside a sample: an odd trailing byte is kept
    for the next chunk instead of being dropped or misread.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> Samples:
        data = self._pending + data
        whole = len(data) - len(data) % 2
        self._pending = data[whole:]
        pcm = np.frombuffer(data[:whole], dtype="<i2")
        return pcm.astype(np.float32) / 32768.0

    @property
    def leftover(self) -> int:
        """Bytes still waiting for their other half (1 at the end means a truncated stream)."""
        return len(self._pending)


class RemoteTTSEngine:
    """A ``TTSEngine`` that forwards to a remote ``POST {base}/audio/speech``.

    Voices come from ``GET {base}/audio/voices`` when the server has it (vLLM-Omni does),
    otherwise from ``voices``; they are asked for in ``load`` (``capabilities`` never touches the
    network, so it lists the configured voices until then).

    With ``cloning`` on, the voice state of a cloned voice is the reference clip itself as 16-bit
    WAV bytes; each synthesis sends it as ``ref_audio`` (a base64 data URL, which vLLM-Omni
    accepts). ``language`` is not sent: OpenAI rejects it and Voxtral does not need it.
    """

    name = "remote-tts"
    version = "1"
    """The voice state is a plain WAV clip: it stays valid whatever the remote model is."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        sample_rate: int = 24000,
        voices: Sequence[str] = (),
        languages: Sequence[str] = (),
        cloning: bool = False,
        max_concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.sample_rate = sample_rate
        self.cloning = cloning
        self.max_concurrency = max_concurrency
        self._configured_voices = tuple(voices)
        self._languages = tuple(languages)
        self._remote_voices: tuple[str, ...] | None = None
        """The remote's own list, once it answered (() when it has none)."""
        self._voices_fresh = False
        """Asked since the last load; unloading keeps the list but asks again on the next load."""
        self._voices_retry_at = 0.0
        self._unloads = 0
        """Counts unloads, so that a voice list asked for before one is not taken as fresh."""
        self._caps: tuple[tuple[str, ...], TTSCapabilities] | None = None
        """The capabilities and the voice ids they were built for."""
        self._lock = threading.Lock()
        self._server = RemoteServer(base_url, api_key=api_key, timeout=timeout, transport=transport)

    def capabilities(self) -> TTSCapabilities:
        # Built again only when the voices change: the preset catalogue compares the voices on
        # every request, which is quick for the same objects and slow for fresh ones.
        ids = self._voice_ids()
        cached = self._caps
        if cached is None or cached[0] != ids:
            voices = tuple(PresetVoice(id=v, name=v, languages=self._languages) for v in ids)
            caps = TTSCapabilities(
                sample_rate=self.sample_rate,
                voices=voices,
                languages=self._languages,
                cloning=self.cloning,
                max_concurrency=self.max_concurrency,
            )
            cached = self._caps = (ids, caps)
        return cached[1]

    def load(self) -> None:
        """Ask the remote for its voices (there are no weights here).

        Never raises for an unreachable remote: synthesis reports that, and the voices are asked
        for again then.
        """
        self._refresh_voices()

    def unload(self) -> None:
        self._server.close()
        with self._lock:
            self._voices_fresh = False
            self._unloads += 1

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        self._refresh_voices()
        payload = self._payload(request)
        decoder = Pcm16Decoder()
        with self._server.stream("POST", "/audio/speech", json=payload) as response:
            for data in response.iter_bytes(_READ_BYTES):
                samples = decoder.feed(data)
                if len(samples):
                    yield samples
        if decoder.leftover:
            raise EngineFailure("The remote server sent a truncated 16-bit PCM stream.")

    def clone_voice(self, reference: AudioClip) -> bytes:
        if not self.cloning:
            raise Unsupported(
                "The remote speech server is not set up for cloning; enable cloning for it "
                "and serve a model that takes ref_audio (e.g. Voxtral on vLLM-Omni)."
            )
        return to_mono_wav(reference)

    def _payload(self, request: SynthesisRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "input": request.text,
            "response_format": "pcm",
            "speed": request.speed,
        }
        if self.model:
            payload["model"] = self.model
        voice = request.voice or self._default_voice()
        if voice:
            payload["voice"] = voice
        if request.speed == 1.0:
            # Raw audio as it is decoded (OpenAI and vLLM-Omni); vLLM-Omni only streams at speed 1.
            payload["stream_format"] = "audio"
        if request.voice_state is not None:
            if not self.cloning:
                raise Unsupported("The remote speech server is not set up for cloned voices.")
            encoded = base64.b64encode(request.voice_state).decode("ascii")
            payload["ref_audio"] = f"data:audio/wav;base64,{encoded}"
        return payload

    def _default_voice(self) -> str | None:
        voices = self._voice_ids()
        return voices[0] if voices else None

    def _voice_ids(self) -> tuple[str, ...]:
        # No network here: the services read capabilities on the event loop.
        return self._remote_voices or self._configured_voices

    def _refresh_voices(self) -> None:
        # The request runs without the lock: synthesis and unload must not wait for it (up to
        # the timeout when the remote is slow).
        if self._voices_fresh:
            return
        unloads = self._unloads
        fetched = self._fetch_voices()
        if fetched is None:  # unreachable: keep what it said last time
            return
        with self._lock:
            if unloads == self._unloads:
                self._remote_voices = fetched
                self._voices_fresh = True
            elif not self._voices_fresh:
                # Unloaded meanwhile: still the newest list, but asked for again on load.
                self._remote_voices = fetched

    def _fetch_voices(self) -> tuple[str, ...] | None:
        """The remote's voice list; () when it has no such endpoint, None to ask again later."""
        if time.monotonic() < self._voices_retry_at:
            return None
        try:
            data = self._server.request("GET", "/audio/voices").json()
        except (RemoteStatusError, ValueError):
            return ()
        except EngineFailure:
            # Unreachable or timed out: use the configured voices, ask again a little later.
            self._voices_retry_at = time.monotonic() + _VOICES_RETRY_SECONDS
            return None
        names = data.get("voices") if isinstance(data, dict) else data
        if not isinstance(names, list):
            return ()
        return tuple(name for name in map(_voice_name, names) if name)


def _voice_name(entry: object) -> str | None:
    """vLLM-Omni lists plain names; other servers list objects with an id or a name."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        for key in ("id", "voice_id", "name"):
            if isinstance(entry.get(key), str):
                return str(entry[key])
    return None
