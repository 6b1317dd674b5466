"""What clients tripped on, each through the official SDK against a live server (fake engines):
typed Mistral transcription events, Mistral ``pcm`` at 24 kHz, every id speech accepts answers
``GET /v1/audio/voices/{id}``, the shape header, and one status for an unknown model."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from mistralai.client.models import (
    SpeechStreamAudioDelta,
    SpeechStreamDone,
    TranscriptionStreamDone,
    TranscriptionStreamLanguage,
    TranscriptionStreamSegmentDelta,
    TranscriptionStreamTextDelta,
)

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

TRANSCRIPT = "This is a fake transcript. It has two sentences."
ENGINE_RATE = 22050
"""Not 24 kHz, so that the Mistral ``pcm`` rate is seen to be converted."""


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(sample_rate=ENGINE_RATE), FakeSTTEngine(TRANSCRIPT), FakeChatEngine()]


@pytest.fixture
def mistral(live_server: LiveServer) -> Mistral:
    return Mistral(server_url=live_server.url)


@pytest.fixture
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any", max_retries=0)


def wav_file() -> dict[str, object]:
    return {"file_name": "in.wav", "content": tone_wav(3.2)}


def test_every_mistral_transcription_event_is_typed(mistral: Mistral) -> None:
    events = list(
        mistral.audio.transcriptions.stream(
            model="voxtral-mini-latest",
            file=wav_file(),  # type: ignore[arg-type]
            timestamp_granularities=["segment", "word"],  # type: ignore[arg-type]
        )
    )
    kinds = {
        "transcription.language": TranscriptionStreamLanguage,
        "transcription.text.delta": TranscriptionStreamTextDelta,
        "transcription.segment": TranscriptionStreamSegmentDelta,
        "transcription.done": TranscriptionStreamDone,
    }
    assert {e.event for e in events} == set(kinds)
    for event in events:
        assert isinstance(event.data, kinds[event.event]), (event.event, event.data)
    segments = [e.data for e in events if isinstance(e.data, TranscriptionStreamSegmentDelta)]
    assert [s.text for s in segments] == ["This is a fake transcript.", "It has two sentences."]
    assert segments[0].start == 0.0 and segments[0].end is not None
    assert [w["word"] for w in segments[0].model_extra["words"]][:2] == ["This", "is"]  # type: ignore[index]
    done = events[-1].data
    assert isinstance(done, TranscriptionStreamDone)
    assert done.text == TRANSCRIPT and done.segments is not None and len(done.segments) == 2


def wav_seconds(data: bytes) -> float:
    """Seconds of 16-bit mono audio in the file (a streamed WAV's header has no sizes)."""
    with wave.open(io.BytesIO(data)) as clip:
        assert clip.getframerate() == ENGINE_RATE  # wav stays at the engine's rate
    samples = len(data) - (data.index(b"data") + 8)
    return samples / 2 / ENGINE_RATE


def test_mistral_pcm_is_float32_at_24_khz(mistral: Mistral) -> None:
    def speak(fmt: str) -> bytes:
        result = mistral.audio.speech.complete(
            input="Twenty four thousand.",
            voice_id="fake-tts:alice",
            response_format=fmt,  # type: ignore[arg-type]
        )
        return base64.b64decode(result.audio_data)

    seconds = wav_seconds(speak("wav"))
    pcm = np.frombuffer(speak("pcm"), dtype="<f4")
    assert len(pcm) / 24000 == pytest.approx(seconds, abs=0.01)
    assert 0.1 < np.abs(pcm).max() <= 1.0

    stream = mistral.audio.speech.complete(
        input="Twenty four thousand.", voice_id="fake-tts:alice", response_format="pcm", stream=True
    )
    with stream as events:
        received = list(events)
    pieces = [e.data for e in received if e.event == "speech.audio.delta"]
    assert all(isinstance(p, SpeechStreamAudioDelta) for p in pieces)  # typed, not UNKNOWN
    assert isinstance(received[-1].data, SpeechStreamDone)
    audio = b"".join(base64.b64decode(p.audio_data) for p in pieces)  # type: ignore[union-attr]
    assert len(audio) / 4 / 24000 == pytest.approx(seconds, abs=0.01)


def test_openai_pcm_is_s16_at_24_khz(oai: openai.OpenAI) -> None:
    raw = oai.audio.speech.create(
        model="tts-1", voice="alloy", input="Twenty four thousand.", response_format="pcm"
    ).content
    wav = oai.audio.speech.create(
        model="tts-1", voice="alloy", input="Twenty four thousand.", response_format="wav"
    ).content
    assert len(raw) / 2 / 24000 == pytest.approx(wav_seconds(wav), abs=0.01)


@pytest.fixture
def aliased(settings: Settings) -> Iterator[LiveServer]:
    engines = settings.engines.model_copy(update={"voice_aliases": {"narrator": "fake-tts:alice"}})
    configured = settings.model_copy(update={"engines": engines})
    with run_server(configured, [FakeTTSEngine()]) as server:
        yield server


@pytest.mark.parametrize(
    ("voice_id", "maps_to"),
    [
        ("en_paul_neutral", "fake-tts:bob"),  # a Mistral preset: English, male
        ("gb_jane_sarcasm", "fake-tts:alice"),
        ("voice_478", "fake-tts:alice"),
        ("alloy", "fake-tts:alice"),  # OpenAI names
        ("onyx", "fake-tts:bob"),
        ("narrator", "fake-tts:alice"),  # a configured alias
        ("fake-tts:bob", "fake-tts:bob"),  # a local preset maps to itself
    ],
)
def test_every_voice_id_speech_takes_answers_with_its_local_voice(
    aliased: LiveServer, voice_id: str, maps_to: str
) -> None:
    mistral = Mistral(server_url=aliased.url)
    voice = mistral.audio.voices.get(voice_id=voice_id)
    assert voice.id == voice_id
    assert voice.type == "preset"
    if voice_id != maps_to:  # the SDK drops unknown keys: the description says it too
        assert voice.description is not None and maps_to in voice.description
    with aliased.client() as client:
        assert client.get(f"/v1/audio/voices/{voice_id}").json()["maps_to"] == maps_to
    spoken = mistral.audio.speech.complete(input="Hi.", voice_id=voice_id, response_format="wav")
    assert base64.b64decode(spoken.audio_data)[:4] == b"RIFF"


def test_a_custom_voice_maps_to_itself_and_unknown_ids_are_404(
    live_server: LiveServer, mistral: Mistral
) -> None:
    created = mistral.audio.voices.create(
        name="mine", sample_audio=base64.b64encode(tone_wav(3.0)).decode()
    )
    assert mistral.audio.voices.get(voice_id=created.id).id == created.id
    with live_server.client() as client:
        assert client.get(f"/v1/audio/voices/{created.id}").json()["maps_to"] == created.id
    with pytest.raises(SDKError) as info:
        mistral.audio.voices.get(voice_id="no-such-voice")
    assert info.value.status_code == 404


def test_shape_header_picks_the_envelope_and_a_bad_value_is_400(live_server: LiveServer) -> None:
    bad_body = {"input": "", "voice_id": "fake-tts:alice"}
    with live_server.client() as client:
        mistral = client.post("/v1/audio/speech", json=bad_body)
        assert mistral.status_code == 422 and mistral.json()["object"] == "error"
        as_openai = client.post(
            "/v1/audio/speech", json=bad_body, headers={"X-Voxserve-Shape": "openai"}
        )
        assert as_openai.status_code == 422 and "error" in as_openai.json()
        assert "object" not in as_openai.json()
        bad = client.post("/v1/audio/speech", json=bad_body, headers={"X-Voxserve-Shape": "xml"})
        assert bad.status_code == 400
        assert "X-Voxserve-Shape" in bad.json()["message"]
        chat = {"model": "fake-chat", "messages": [{"role": "user", "content": "one two"}]}
        openai_chat = client.post(
            "/v1/chat/completions",
            json={**chat, "model": "nope"},
            headers={"X-Voxserve-Shape": "openai"},
        )
        assert "error" in openai_chat.json() and "object" not in openai_chat.json()


def test_shape_header_decides_answers_too(live_server: LiveServer) -> None:
    files = {"file": ("in.wav", tone_wav(3.2), "audio/wav")}
    with live_server.client() as client:
        mistral = client.post("/v1/audio/transcriptions", files=files, data={"model": "fake-stt"})
        assert mistral.json()["model"] == "fake-stt" and len(mistral.json()["segments"]) == 2
        as_openai = client.post(
            "/v1/audio/transcriptions",
            files=files,
            data={"model": "fake-stt"},
            headers={"X-Voxserve-Shape": "openai"},
        )
        assert as_openai.json() == {"text": TRANSCRIPT, "usage": {"type": "duration", "seconds": 4}}
        openai_body = {"input": "Hi.", "voice": "alloy", "response_format": "wav"}
        raw = client.post("/v1/audio/speech", json=openai_body)
        assert raw.headers["content-type"] == "audio/wav"
        as_mistral = client.post(
            "/v1/audio/speech", json=openai_body, headers={"X-Voxserve-Shape": "mistral"}
        )
        assert as_mistral.status_code == 400  # Mistral's body names its voice voice_id
        assert as_mistral.json()["param"] == "voice_id"


def test_an_unknown_model_answers_one_status_in_each_shape(
    live_server: LiveServer, mistral: Mistral, oai: openai.OpenAI
) -> None:
    statuses = []
    with pytest.raises(SDKError) as m_speech:
        mistral.audio.speech.complete(input="Hi.", model="no-such-model", voice_id="fake-tts:bob")
    with pytest.raises(SDKError) as m_stt:
        mistral.audio.transcriptions.complete(model="no-such-model", file=wav_file())  # type: ignore[arg-type]
    with pytest.raises(SDKError) as m_chat:
        mistral.chat.complete(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    for err in (m_speech, m_stt, m_chat):
        statuses.append(err.value.status_code)
        assert httpx.Response(200, content=err.value.body).json()["object"] == "error"
    with pytest.raises(openai.APIStatusError) as o_speech:
        oai.audio.speech.create(model="no-such-model", voice="alloy", input="Hi.")
    with pytest.raises(openai.APIStatusError) as o_stt:
        oai.audio.transcriptions.create(
            model="no-such-model", file=("in.wav", tone_wav(1.0)), response_format="json"
        )
    with pytest.raises(openai.APIStatusError) as o_chat:
        oai.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "Hi"}]
        )
    for o_err in (o_speech, o_stt, o_chat):
        statuses.append(o_err.value.status_code)
        assert set(o_err.value.response.json()) == {"error"}
        assert "fake" in o_err.value.response.json()["error"]["message"]  # it names what exists
    assert statuses == [400] * 6
