"""The speech benchmark through the server: one request function per mode (Mistral SSE, OpenAI
raw audio streaming), each timed to the first audio, and one pass of concurrent clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict

import httpx
from common import Batch
from tts_data import TEXTS, EngineChoice, Sample

OPENAI_PCM_RATE = 24000
"""OpenAI's ``pcm`` is 16-bit at 24 kHz whatever the engine's rate."""
MISTRAL_PCM_RATE = 24000
"""Mistral's ``pcm`` is float32 at 24 kHz, whatever the engine's rate."""

Requester = Callable[[httpx.AsyncClient, str, int, str, str], Awaitable[Sample]]


def check_status(response: httpx.Response, body: bytes) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {body[:500]!r}")


async def sse_request(
    client: httpx.AsyncClient, engine: str, clients: int, name: str, voice: str
) -> Sample:
    """Mistral SSE with float32 PCM; counts the decoded size of every delta's base64."""
    body = {
        "model": engine,
        "input": TEXTS[name],
        "voice_id": voice,
        "response_format": "pcm",
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    audio_bytes = 0
    buffer = b""
    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            check_status(response, await response.aread())
        async for data in response.aiter_bytes():
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                size = delta_size(event)
                if size and first is None:
                    first = time.perf_counter() - started
                audio_bytes += size
    wall = time.perf_counter() - started
    return Sample("sse", clients, name, 0, first or wall, wall, audio_bytes / 4 / MISTRAL_PCM_RATE)


def delta_size(event: bytes) -> int:
    """Decoded bytes of audio in one SSE event (0 for other events); raises on error events."""
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        payload = json.loads(line[5:])
        kind = payload.get("type")
        if kind == "error":
            raise RuntimeError(f"error event: {payload}")
        if kind == "speech.audio.delta":
            return len(base64.b64decode(payload["audio_data"]))
    return 0


async def audio_request(
    client: httpx.AsyncClient, engine: str, clients: int, name: str, voice: str
) -> Sample:
    """OpenAI raw audio streaming, 16-bit PCM at 24 kHz."""
    body = {
        "model": engine,
        "input": TEXTS[name],
        "voice": voice,
        "response_format": "pcm",
        "stream_format": "audio",
    }
    started = time.perf_counter()
    first: float | None = None
    audio_bytes = 0
    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            check_status(response, await response.aread())
        async for data in response.aiter_raw():
            if data and first is None:
                first = time.perf_counter() - started
            audio_bytes += len(data)
    wall = time.perf_counter() - started
    seconds = audio_bytes / 2 / OPENAI_PCM_RATE
    return Sample("audio", clients, name, 0, first or wall, wall, seconds)


REQUESTERS: dict[str, Requester] = {"sse": sse_request, "audio": audio_request}
sample_rates: dict[str, int] = {}
"""Engine sample rates (for the report), filled by ``tts.run``."""


def client_order(index: int, rotate: bool) -> list[str]:
    """The texts in the order client ``index`` sends them: rotated by one text per client, so
    that clients are not in lockstep and new requests arrive while others are mid-stream."""
    names = list(TEXTS)
    shift = index % len(names) if rotate else 0
    return names[shift:] + names[:shift]


async def server_pass(
    url: str, mode: str, clients: int, choice: EngineChoice, rotate: bool
) -> tuple[list[Sample], Batch]:
    """Every client goes through every text (see ``client_order``); all start together."""
    requester = REQUESTERS[mode]

    async def one_client(index: int, http: httpx.AsyncClient) -> list[Sample]:
        done = []
        for name in client_order(index, rotate):
            sample = await requester(http, choice.name, clients, name, choice.public_voice)
            done.append(Sample(**{**asdict(sample), "client": index}))
        return done

    timeout = httpx.Timeout(600.0)
    https = [httpx.AsyncClient(base_url=url, timeout=timeout) for _ in range(clients)]
    try:
        # Open every connection first, so the measured requests do not include a TCP connect.
        await asyncio.gather(*(http.get("/health") for http in https))
        started = time.perf_counter()
        results = await asyncio.gather(*(one_client(i, h) for i, h in enumerate(https)))
        wall = time.perf_counter() - started
    finally:
        for http in https:
            await http.aclose()
    samples = [s for result in results for s in result]
    return samples, Batch(mode, clients, wall, sum(s.audio_seconds for s in samples))
