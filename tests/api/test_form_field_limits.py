"""Per-field limits of the transcription form, through the official SDKs against a live server
(fake STT engine, fake diarizer): a text field holds 1 MiB, a speaker reference field 32 MiB."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from tests.support.audio_samples import tone_wav
from tests.support.fake_diarizer import FakeDiarizer
from tests.support.live_server import LiveServer
from voxserve.api.forms import MAX_FIELD_BYTES
from voxserve.engines.fake import FakeSTTEngine


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeSTTEngine("one two three four."), FakeDiarizer()]


def test_a_text_field_past_its_limit_is_a_400_naming_it(live_server: LiveServer) -> None:
    oai = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any")
    with pytest.raises(openai.BadRequestError) as caught:
        oai.audio.transcriptions.create(
            model="whisper-1", file=("in.wav", tone_wav(1.0)), prompt="a" * (MAX_FIELD_BYTES + 1)
        )
    assert caught.value.status_code == 400
    assert "prompt: at most 1024 KiB" in str(caught.value.body)


def test_a_speaker_reference_past_the_text_limit_is_read(live_server: LiveServer) -> None:
    clip = base64.b64encode(tone_wav(15.0, rate=48000)).decode()  # about 1.9 MB of base64
    assert len(clip) > MAX_FIELD_BYTES
    with live_server.client() as client:
        answer = client.post(
            "/v1/audio/transcriptions",
            data={"model": "voxtral-mini-latest", "diarize": "true"},
            files=[
                ("file", ("talk.wav", tone_wav(4.0), "audio/wav")),
                ("speaker_references", (None, json.dumps({"ann": clip}), "application/json")),
            ],
        )
    assert answer.status_code == 200, answer.text
