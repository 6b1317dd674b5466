"""Diarization without the ``diarize`` extra (no diarizer among the engines): a clear 400 in
each shape's envelope naming the extra, and model cards that do not claim diarization."""

from __future__ import annotations

import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeSTTEngine


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeSTTEngine("one two. three four.")]


def test_mistral_diarize_names_the_extra(live_server: LiveServer) -> None:
    client = Mistral(server_url=live_server.url)
    with pytest.raises(SDKError) as caught:
        client.audio.transcriptions.complete(
            model="voxtral-mini-latest",
            file={"file_name": "a.wav", "content": tone_wav(2.0)},
            diarize=True,
        )
    assert caught.value.status_code == 400
    assert "diarize extra" in caught.value.body and "voxserve[diarize]" in caught.value.body


def test_openai_diarized_json_names_the_extra(live_server: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any")
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("a.wav", tone_wav(2.0)),
            response_format="diarized_json",
        )
    assert "diarize extra" in caught.value.message
    assert caught.value.body["param"] == "diarize"  # type: ignore[index]


def test_model_cards_do_not_claim_diarization(live_server: LiveServer) -> None:
    with live_server.client() as client:
        models = client.get("/v1/models").json()["data"]
    card = next(m for m in models if m["id"] == "fake-stt")
    assert card["audio_transcription_capabilities"]["diarization"] is False
