"""The voice library through the official mistralai 3.7.0 SDK against a live server."""

from __future__ import annotations

import base64
import io
import wave

import pytest
from mistralai.client import Mistral
from mistralai.client.errors import HTTPValidationError, SDKError

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer


@pytest.fixture
def mistral(live_server: LiveServer) -> Mistral:
    # Keyless loopback mode: the SDK sends no auth header when given no key.
    return Mistral(server_url=live_server.url)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_voice(mistral: Mistral, name: str = "my-voice", **extra: object):  # type: ignore[no-untyped-def]
    return mistral.audio.voices.create(
        name=name,
        sample_audio=b64(tone_wav(3.0)),
        sample_filename="in.wav",
        **extra,  # type: ignore[arg-type]
    )


def test_create_get_update_delete_roundtrip(mistral: Mistral) -> None:
    created = make_voice(
        mistral,
        languages=["en", "fr"],
        gender="female",
        age=30,
        tags=["calm"],
        color="#ff0000",
        description="desc",
    )
    assert created.type == "custom"
    assert created.user_id is not None
    assert created.languages == ["en", "fr"]
    assert created.gender == "female"

    got = mistral.audio.voices.get(voice_id=created.id)
    assert got.id == created.id
    assert got.name == "my-voice"

    updated = mistral.audio.voices.update(
        voice_id=created.id, name="renamed", tags=["x"], retention_notice=7, description=None
    )
    assert updated.name == "renamed"
    assert updated.tags == ["x"]
    assert updated.retention_notice == 7
    assert updated.description is None

    deleted = mistral.audio.voices.delete(voice_id=created.id)
    assert deleted.id == created.id
    with pytest.raises(SDKError) as info:
        mistral.audio.voices.get(voice_id=created.id)
    assert info.value.status_code == 404


def test_list_v1_paginates_custom_and_presets(mistral: Mistral) -> None:
    for i in range(3):
        make_voice(mistral, name=f"voice-{i}")
    page = mistral.audio.voices.list(limit=2, offset=0, type_="custom")
    assert [v.name for v in page.items] == ["voice-2", "voice-1"]
    assert (page.total, page.page, page.page_size, page.total_pages) == (3, 1, 2, 2)
    second = mistral.audio.voices.list(limit=2, offset=2, type_="custom")
    assert [v.name for v in second.items] == ["voice-0"]
    assert second.page == 2

    presets = mistral.audio.voices.list(limit=100, type_="preset")
    assert presets.total == 2  # the fake engine's two presets
    assert all(v.type == "preset" and v.user_id is None for v in presets.items)

    everything = mistral.audio.voices.list(limit=100, type_="all")
    assert everything.total == 5
    assert [v.type for v in everything.items] == ["custom"] * 3 + ["preset"] * 2


def test_search_v2_cursor_and_filters(mistral: Mistral) -> None:
    for i in range(5):
        make_voice(mistral, name=f"Sam {i}", gender="male" if i % 2 else "female", languages=["en"])
    make_voice(mistral, name="Other", languages=["fr"])

    first = mistral.audio.voices.search(page_size=2, type_="custom", query="sam")
    names = [v.name for v in first.result.data]
    pages = 1
    current = first
    while (current := current.next()) is not None:  # type: ignore[assignment]
        names += [v.name for v in current.result.data]
        pages += 1
    assert sorted(names) == [f"Sam {i}" for i in range(5)]
    assert pages == 3

    males = mistral.audio.voices.search(page_size=50, type_="custom", gender=["male"])
    assert sorted(v.name for v in males.result.data) == ["Sam 1", "Sam 3"]
    french = mistral.audio.voices.search(page_size=50, type_="all", language=["fr"])
    assert {v.name for v in french.result.data} == {"Other", "Bob"}


def test_sample_audio_is_wav(mistral: Mistral) -> None:
    created = make_voice(mistral)
    response = mistral.audio.voices.get_sample_audio(voice_id=created.id)
    data = response.read()
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert abs(w.getnframes() / w.getframerate() - 3.0) < 0.05


def test_preset_get_and_sample(mistral: Mistral) -> None:
    voice = mistral.audio.voices.get(voice_id="fake-tts:alice")
    assert voice.type == "preset"
    assert voice.user_id is None
    response = mistral.audio.voices.get_sample_audio(voice_id="fake-tts:alice")
    assert response.read()[:4] == b"RIFF"


def test_validation_error_is_http_validation_error(mistral: Mistral) -> None:
    with pytest.raises(HTTPValidationError) as info:
        mistral.audio.voices.create(name="bad", sample_audio="!!!not base64!!!")
    assert info.value.data.detail
