"""Speech through the official mistralai and openai SDKs against a live server (fake engine)."""

from __future__ import annotations

import base64

import av
import numpy as np
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.support.audio_samples import tone_wav
from tests.support.decode import decode_bytes
from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeTTSEngine

TEXT = "Hello there. This is a test of speech. Goodbye now."


@pytest.fixture
def mistral(live_server: LiveServer) -> Mistral:
    return Mistral(server_url=live_server.url)


@pytest.fixture
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused-on-keyless-loopback")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "opus"])
def test_mistral_complete_preset(mistral: Mistral, fmt: str) -> None:
    result = mistral.audio.speech.complete(
        input=TEXT,
        model="voxtral-mini-tts-2603",
        voice_id="fake-tts:alice",
        response_format=fmt,  # type: ignore[arg-type]
    )
    samples, rate = decode_bytes(base64.b64decode(result.audio_data))
    assert 0.5 < len(samples) / rate < 2.0


def test_mistral_pcm_is_float32(mistral: Mistral) -> None:
    result = mistral.audio.speech.complete(
        input=TEXT, voice_id="fake-tts:bob", response_format="pcm"
    )
    samples = np.frombuffer(base64.b64decode(result.audio_data), dtype="<f4")
    assert 0.1 < np.abs(samples).max() <= 1.0


def test_mistral_stream_events_concatenate_to_a_file(mistral: Mistral) -> None:
    stream = mistral.audio.speech.complete(
        input=TEXT, voice_id="fake-tts:alice", response_format="mp3", stream=True
    )
    chunks, done = [], None
    with stream as events:
        for event in events:
            if event.event == "speech.audio.delta":
                chunks.append(base64.b64decode(event.data.audio_data))  # type: ignore[union-attr]
            elif event.event == "speech.audio.done":
                done = event.data
    assert len(chunks) >= 2
    assert done is not None
    samples, rate = decode_bytes(b"".join(chunks))
    assert 0.5 < len(samples) / rate < 2.0


def test_mistral_custom_voice_and_ref_audio(mistral: Mistral) -> None:
    voice = mistral.audio.voices.create(name="mine", sample_audio=b64(tone_wav(3.0)))
    saved = mistral.audio.speech.complete(input=TEXT, voice_id=voice.id, response_format="wav")
    oneoff = mistral.audio.speech.complete(
        input=TEXT, ref_audio=b64(tone_wav(4.0, freq=330)), response_format="wav"
    )
    for result in (saved, oneoff):
        samples, _ = decode_bytes(base64.b64decode(result.audio_data))
        assert len(samples) > 0


def test_mistral_hosted_voice_alias_resolves(mistral: Mistral) -> None:
    result = mistral.audio.speech.complete(
        input="Hi.", voice_id="en_paul_happy", response_format="wav"
    )
    assert base64.b64decode(result.audio_data)[:4] == b"RIFF"


def test_mistral_errors(mistral: Mistral) -> None:
    with pytest.raises(SDKError) as missing:
        mistral.audio.speech.complete(input="Hi.", voice_id="nope")
    assert missing.value.status_code == 404
    assert "Voice 'nope' not found." in missing.value.body
    with pytest.raises(SDKError) as neither:
        mistral.audio.speech.complete(input="Hi.")
    assert neither.value.status_code == 400


@pytest.mark.parametrize(
    ("fmt", "container"),
    [("mp3", "mp3"), ("wav", "wav"), ("flac", "flac"), ("opus", "ogg"), ("aac", "aac")],
)
def test_openai_create(oai: openai.OpenAI, fmt: str, container: str) -> None:
    response = oai.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt
    )  # type: ignore[arg-type]
    samples, rate = decode_bytes(response.content)
    assert 0.5 < len(samples) / rate < 2.0
    assert av.open(__import__("io").BytesIO(response.content)).format.name.startswith(container[:3])


def test_openai_pcm_is_16bit_24k(oai: openai.OpenAI) -> None:
    response = oai.audio.speech.create(
        model="tts-1", voice="nova", input=TEXT, response_format="pcm"
    )
    samples = np.frombuffer(response.content, dtype="<i2")
    assert 0.5 < len(samples) / 24000 < 2.0


def test_openai_streaming_response(oai: openai.OpenAI) -> None:
    with oai.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="mp3"
    ) as response:
        parts = list(response.iter_bytes())
    samples, rate = decode_bytes(b"".join(parts))
    assert 0.5 < len(samples) / rate < 2.0


def test_openai_sse(oai: openai.OpenAI) -> None:
    import json

    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines]
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(audio) > 1000


def test_openai_unknown_voice_is_404_in_openai_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        oai.audio.speech.create(model="tts-1", voice="nobody-here", input="Hi.")  # type: ignore[arg-type]
    assert "nobody-here" in str(info.value)


def test_openai_instructions_set_pace_and_emotion(
    oai: openai.OpenAI, live_server: LiveServer, fake_engines: list[object]
) -> None:
    engine = fake_engines[0]
    assert isinstance(engine, FakeTTSEngine)
    body = {
        "name": "moody",
        "sample_audio": b64(tone_wav(3.0, amp=0.1)),
        "emotion_samples": {"happy": b64(tone_wav(3.0, amp=0.6))},  # an extension: raw HTTP
    }
    with live_server.client() as client:
        voice = client.post("/v1/audio/voices", json=body).json()["id"]
    for instructions in (None, "Speak in a cheerful, upbeat tone and talk slowly."):
        oai.audio.speech.create(
            model="gpt-4o-mini-tts",
            voice=voice,  # type: ignore[arg-type]
            input="Hello.",
            instructions=instructions or openai.NOT_GIVEN,
            speed=1.2,
        ).read()
    plain, styled = engine.requests
    assert (plain.speed, plain.emotion) == (1.2, None)
    assert (styled.speed, styled.emotion) == (pytest.approx(0.96), "happy")
    assert styled.voice_state != plain.voice_state  # the happy sample's voice
