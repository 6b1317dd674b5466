"""``POST /v1/audio/translations`` through the official openai SDK: speech in any language to
English text, in all five response formats (a fake engine that "hears" French and translates)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import openai
import pytest

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.engines.fake import FakeSTTEngine
from voxserve.settings import Settings

FRENCH = "Bonjour tout le monde. Il fait beau."
ENGLISH = "Hello everyone. The weather is fine."


@contextmanager
def translating(settings: Settings) -> Iterator[LiveServer]:
    engine = FakeSTTEngine(FRENCH, "fr", translation=ENGLISH)  # type: ignore[call-arg]
    with run_server(settings, [engine]) as server:
        yield server


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="any", max_retries=0)


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_translations_in_every_format(settings: Settings, fmt: str) -> None:
    with translating(settings) as server:
        result = client(server).audio.translations.create(
            model="whisper-1",
            file=("fr.wav", tone_wav(3.2)),
            response_format=fmt,  # type: ignore[arg-type]
        )
    if fmt == "json":
        assert result.text == ENGLISH  # type: ignore[union-attr]
    elif fmt == "verbose_json":
        assert result.text == ENGLISH  # type: ignore[union-attr]
        assert result.language == "english"  # type: ignore[union-attr]
        segments = [s.text for s in result.segments]  # type: ignore[union-attr]
        assert segments == ["Hello everyone.", "The weather is fine."]
    elif fmt == "text":
        assert str(result).strip() == ENGLISH
    elif fmt == "srt":
        assert "00:00:00,000 --> " in str(result) and "Hello everyone." in str(result)
    else:
        assert str(result).startswith("WEBVTT") and "Hello everyone." in str(result)


def test_an_engine_that_cannot_translate_says_what_is_needed(live_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(live_server).audio.translations.create(
            model="whisper-1", file=("fr.wav", tone_wav(1.0))
        )
    error = info.value.response.json()["error"]
    assert error["code"] == "unsupported"
    assert "translat" in error["message"].lower()


def test_translations_refuse_an_unknown_format(live_server: LiveServer) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client(live_server).audio.translations.create(
            model="whisper-1",
            file=("fr.wav", tone_wav(1.0)),
            response_format="xml",  # type: ignore[arg-type]
        )
    assert info.value.response.json()["error"]["param"] == "response_format"
