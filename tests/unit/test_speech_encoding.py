"""Compressed speech is encoded off the event loop (MP3 and Opus cost tens of milliseconds per
sentence); PCM and WAV, plain copies, are not worth a thread hop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from voxserve.audio.encode import make_stream_encoder
from voxserve.audio.types import Samples
from voxserve.bootstrap import open_services
from voxserve.core import speech as speech_module
from voxserve.core.speech import SpeechRequest
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


def test_compressed_formats_are_encoded_in_worker_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []

    class Recording:
        def __init__(self, fmt: str, rate: int) -> None:
            self.real = make_stream_encoder(fmt, rate)  # type: ignore[arg-type]

        def encode(self, samples: Samples) -> bytes:
            threads.append(threading.get_ident())
            return self.real.encode(samples)

        def finish(self) -> bytes:
            threads.append(threading.get_ident())
            return self.real.finish()

    monkeypatch.setattr(speech_module, "make_stream_encoder", Recording)
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0)

    async def run(fmt: str) -> tuple[int, bytes]:
        async with open_services(settings, engines=[FakeTTSEngine()]) as services:
            owner = (await services.auth.create_key("alice")).owner.id
            request = SpeechRequest(owner, "One two. Three four.", voice_id="fake-tts:alice")
            prepared = await services.speech.prepare(request)
            audio = b"".join([data async for data in services.speech.encoded(prepared, fmt)])
            return threading.get_ident(), audio

    loop_thread, audio = asyncio.run(run("mp3"))
    assert audio
    assert len(threads) >= 3  # the chunks of two sentences and the tail
    assert loop_thread not in threads

    threads.clear()
    loop_thread, audio = asyncio.run(run("wav"))
    assert audio and set(threads) == {loop_thread}
