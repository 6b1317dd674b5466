"""Realtime transcription with faster-whisper base (streamed greedy decodes, Silero VAD turns)
through ``mistralai``'s realtime client against a live server: real clips from the shared data,
sent in 100 ms chunks at real-time pace, judged by word error rate."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import openai
import pytest
from mistralai.client import Mistral
from mistralai.extra.realtime import (
    AudioFormat,
    SpeechStreamAudioDelta,
    SpeechStreamDone,
    audio_bytes,
)

from tests.support import speech_data
from tests.support.live_server import LiveServer, run_server
from tests.support.models import models_dir
from tests.support.wer import wer
from voxserve.audio.encode import encode
from voxserve.settings import Settings

pytestmark = pytest.mark.model
CLIP = "faster_whisper_tests/jfk.flac"
FIRST = "f5tts_examples/basic_ref_en.wav"
SECOND = "ljspeech/LJ001-0004.flac"
"""Two clips without long pauses of their own (JFK's pauses are turn ends too)."""
MODEL = "voxtral-mini-transcribe-realtime-2602"
CHUNK_S = 0.1


@pytest.fixture(scope="module")
def whisper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_dir=models_dir(),
        engines={"default_stt": "faster-whisper-base"},  # type: ignore[arg-type]
    )
    with run_server(settings) as server:
        yield server


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


class PacedAudio:
    """Audio as a live microphone gives it: 100 ms chunks, each when its time has come."""

    def __init__(self, samples: np.ndarray) -> None:
        self.data = pcm16(samples)
        self.ended_at: float | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        step = int(16000 * CHUNK_S) * 2
        start = time.monotonic()
        for i, at in enumerate(range(0, len(self.data), step)):
            await asyncio.sleep(max(0.0, start + i * CHUNK_S - time.monotonic()))
            yield self.data[at : at + step]
        self.ended_at = time.monotonic()


async def transcribe(
    server: LiveServer, audio: PacedAudio, **session: Any
) -> list[tuple[float, Any]]:
    client = Mistral(api_key="any", server_url=server.url)
    stream = client.audio.realtime.transcribe_stream(
        audio.__aiter__(),
        model=MODEL,
        audio_format=AudioFormat(encoding="pcm_s16le", sample_rate=16000),
        **session,
    )
    return [(time.monotonic(), event) async for event in stream]


def kind(event: Any) -> str:
    return str(getattr(event, "type", type(event).__name__))


async def test_words_arrive_while_speaking_and_the_text_matches(
    whisper_server: LiveServer,
) -> None:
    clip = speech_data.clip(CLIP)
    audio = PacedAudio(speech_data.decode(clip.path).samples)
    events = await transcribe(whisper_server, audio)
    kinds = [kind(e) for _, e in events]
    text_kinds = [k for k in kinds if k.startswith("transcription.")]
    assert text_kinds[0] == "transcription.language"
    assert events[kinds.index("transcription.language")][1].audio_language == "en"
    first_delta = next(t for t, e in events if kind(e) == "transcription.text.delta")
    assert audio.ended_at is not None and first_delta < audio.ended_at
    done = events[-1][1]
    assert kind(done) == "transcription.done" and done.language == "en"
    assert wer([clip.transcript], [done.text]) <= 0.15
    deltas = "".join(e.text for _, e in events if kind(e) == "transcription.text.delta")
    assert deltas.split() == done.text.split()


async def test_a_pause_between_two_clips_makes_two_turns_and_two_segments(
    whisper_server: LiveServer,
) -> None:
    first, second = speech_data.clip(FIRST), speech_data.clip(SECOND)
    samples = np.concatenate(
        [
            speech_data.decode(first.path).samples,
            np.zeros(int(1.5 * 16000), np.float32),
            speech_data.decode(second.path).samples,
        ]
    )
    # a turn ends after 1 s of quiet: the speakers' own pauses are shorter, the gap is longer
    turn_detection = {"min_silence_ms": 1000}
    paced = PacedAudio(samples)
    events = [e for _, e in await transcribe(whisper_server, paced, turn_detection=turn_detection)]
    turns = [kind(e) for e in events if kind(e).startswith("turn.")]
    ends = [i for i, k in enumerate(turns) if k == "turn.end"]
    assert turns[0] == "turn.start" and turns[-1] == "turn.end" and len(ends) >= 2
    assert [k for k in turns if k in ("turn.start", "turn.end")][:4] == [
        "turn.start",
        "turn.end",
        "turn.start",
        "turn.end",
    ]
    segments = [e for e in events if kind(e) == "transcription.segment"]
    assert len(segments) == 2
    assert wer([first.transcript], [segments[0].text]) <= 0.2
    assert wer([second.transcript], [segments[1].text]) <= 0.25


async def test_openai_client_with_server_vad_completes_the_transcript(
    whisper_server: LiveServer,
) -> None:
    clip = speech_data.clip(FIRST)
    rate = 24000
    samples = np.concatenate(
        [speech_data.decode(clip.path, sample_rate=rate).samples, np.zeros(rate, np.float32)]
    )
    data, step = pcm16(samples), int(rate * CHUNK_S) * 2
    oai = openai.AsyncOpenAI(base_url=f"{whisper_server.url}/v1", api_key="any")
    async with oai.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        assert (await conn.recv()).type == "session.created"
        start = time.monotonic()
        for i, at in enumerate(range(0, len(data), step)):
            await asyncio.sleep(max(0.0, start + i * CHUNK_S - time.monotonic()))
            chunk = base64.b64encode(data[at : at + step]).decode()
            await conn.send({"type": "input_audio_buffer.append", "audio": chunk})
        kinds: list[str] = []
        transcripts: list[str] = []
        while True:  # until every turn is completed and nothing more comes for 3 s
            settled = bool(transcripts) and kinds.count("input_audio_buffer.speech_started") == len(
                transcripts
            )
            try:
                event = await asyncio.wait_for(conn.recv(), 3 if settled else 30)
            except TimeoutError:
                assert settled
                break
            kinds.append(event.type)
            if event.type == "conversation.item.input_audio_transcription.completed":
                transcripts.append(event.transcript)
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index(
        "input_audio_buffer.committed"
    )
    assert "conversation.item.input_audio_transcription.delta" in kinds
    assert wer([clip.transcript], [" ".join(transcripts)]) <= 0.15


SPOKEN = (
    "The quick brown fox jumps over the lazy dog. "
    "We will meet at the station at nine in the morning."
)


async def test_realtime_speech_in_fragments_transcribes_back(whisper_server: LiveServer) -> None:
    async def fragments() -> AsyncIterator[str]:
        words = SPOKEN.split(" ")
        for i, word in enumerate(words):  # as an LLM streams: a word or two at a time
            yield word + (" " if i < len(words) - 1 else "")
            await asyncio.sleep(0.02)

    client = Mistral(api_key="any", server_url=whisper_server.url)
    events = [
        e
        async for e in client.audio.realtime_speech.speak_stream(
            fragments(), "voxtral-mini-tts-latest", voice_id="piper:en_US-joe-medium"
        )
    ]
    done = events[-1]
    assert isinstance(done, SpeechStreamDone) and done.usage.prompt_tokens >= len(SPOKEN) - 20
    pcm = b"".join(audio_bytes(e) for e in events if isinstance(e, SpeechStreamAudioDelta))
    audio = np.frombuffer(pcm, "<f4")  # f32le at 24 kHz
    assert len(audio) > 24000 * 3
    wav = encode(audio, 24000, "wav")
    result = client.audio.transcriptions.complete(
        model="voxtral-mini-latest", file={"file_name": "s.wav", "content": wav}, language="en"
    )
    assert wer([SPOKEN], [result.text]) <= 0.15, result.text
