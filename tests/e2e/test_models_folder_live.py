"""A running server follows its models folder, seen through the openai SDK: a Piper voice copied
in appears in ``models.list`` and speaks (judged by transcribing it back with a faster-whisper
model linked in the same way); removed, it is gone and asking for it is the usual 503."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.support.live_server import run_server
from tests.support.models import models_dir
from tests.support.wer import wer
from voxserve.settings import Settings

pytestmark = pytest.mark.model

SENTENCE = "We will meet at the station at nine in the morning."
VOICE = "piper:en_US-joe-medium"


def eventually(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server did not see the models folder change"
        time.sleep(0.05)


def model_ids(client: openai.OpenAI) -> set[str]:
    return {model.id for model in client.models.list()}


def test_models_copied_in_and_removed_while_serving(tmp_path: Path) -> None:
    source = models_dir()
    models = tmp_path / "models"
    models.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=models,
        host="127.0.0.1",
        port=0,
        engines={"models_rescan_seconds": 0.1},  # type: ignore[arg-type]
    )
    with run_server(settings) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused-on-loopback")
        before = model_ids(client)
        assert "piper" not in before
        assert "espeak" in before

        shutil.copytree(source / "piper", models / "piper")
        os.symlink(source / "faster-whisper-tiny.en", models / "faster-whisper-tiny.en")
        eventually(lambda: {"piper", "faster-whisper-tiny.en"} <= model_ids(client))

        speech = client.audio.speech.create(
            model="piper", voice=VOICE, input=SENTENCE, response_format="wav"
        )
        heard = client.audio.transcriptions.create(
            model="faster-whisper-tiny.en", file=("s.wav", speech.content), language="en"
        )
        assert wer([SENTENCE], [heard.text]) <= 0.2, heard.text

        shutil.rmtree(models / "piper")
        eventually(lambda: "piper" not in model_ids(client))
        with pytest.raises(openai.APIStatusError) as info:
            client.audio.speech.create(model="piper", voice=VOICE, input=SENTENCE)
        assert info.value.status_code == 503
        assert "voxserve models pull piper-en_US-joe-medium" in info.value.message
