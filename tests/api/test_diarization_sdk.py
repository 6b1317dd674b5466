"""Diarization through the official SDKs against a live server (fake STT engine, fake diarizer).

The fake STT engine spreads its words evenly over the clip; the fake diarizer calls each pitch a
speaker (tests/support/fake_diarizer.py). The clip is 1.5 s of a 220 Hz tone then 2.5 s of a
440 Hz tone, so the first sentence's last word is the second speaker's: the answer must cut the
segment there. Real diarization quality is proven in tests/engines/test_diarization.py.
"""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import openai
import pytest
from mistralai.client import Mistral

from tests.support.audio_samples import pcm16_wav, tone_wav
from tests.support.fake_diarizer import FakeDiarizer
from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeSTTEngine

TRANSCRIPT = "one two three four. five six seven eight."
RATE = 16000


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeSTTEngine(TRANSCRIPT), FakeDiarizer()]


@pytest.fixture
def mistral(live_server: LiveServer) -> Mistral:
    return Mistral(server_url=live_server.url)


@pytest.fixture
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any")


def two_voices() -> bytes:
    t1, t2 = np.arange(int(1.5 * RATE)) / RATE, np.arange(int(2.5 * RATE)) / RATE
    signal = np.concatenate(
        [0.3 * np.sin(2 * np.pi * 220 * t1), 0.3 * np.sin(2 * np.pi * 440 * t2)]
    )
    return pcm16_wav(signal, RATE)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_mistral_diarize_cuts_segments_at_speaker_changes(mistral: Mistral) -> None:
    result = mistral.audio.transcriptions.complete(
        model="voxtral-mini-latest",
        file={"file_name": "talk.wav", "content": two_voices()},
        diarize=True,
    )
    got = [(s.text, s.speaker_id) for s in result.segments]
    assert got == [
        ("one two three", "speaker_1"),
        ("four.", "speaker_2"),
        ("five six seven eight.", "speaker_2"),
    ]
    assert result.segments[1].start == pytest.approx(1.5)
    assert "words" not in (result.segments[0].model_extra or {})  # not asked for


def test_mistral_speaker_references_name_the_speaker(mistral: Mistral) -> None:
    result = mistral.audio.transcriptions.complete(
        model="voxtral-mini-latest",
        file={"file_name": "talk.wav", "content": two_voices()},
        diarize=True,
        speaker_references={"bob": b64(tone_wav(4.0, freq=440, amp=0.3))},
        timestamp_granularities=["word"],  # type: ignore[list-item]
    )
    assert [s.speaker_id for s in result.segments] == ["speaker_1", "bob", "bob"]
    words = result.segments[0].model_extra["words"]  # type: ignore[index]
    assert [w["word"] for w in words] == ["one", "two", "three"]


def test_mistral_stream_segment_events_carry_speakers(mistral: Mistral) -> None:
    events = list(
        mistral.audio.transcriptions.stream(
            model="voxtral-mini-latest",
            file={"file_name": "talk.wav", "content": two_voices()},
            diarize=True,
        )
    )
    segments = [e.data for e in events if e.event == "transcription.segment"]
    assert [s.speaker_id for s in segments] == ["speaker_1", "speaker_2", "speaker_2"]  # type: ignore[union-attr]
    done = events[-1].data
    assert [s.speaker_id for s in done.segments] == ["speaker_1", "speaker_2", "speaker_2"]  # type: ignore[union-attr]


def post(
    server: LiveServer, refs: dict[str, str], audio: bytes | None = None, **data: str
) -> httpx.Response:
    files = [("file", ("talk.wav", audio or two_voices(), "audio/wav"))]
    files.append(("speaker_references", (None, json.dumps(refs), "application/json")))  # type: ignore[arg-type]
    with server.client() as client:
        return client.post(
            "/v1/audio/transcriptions",
            data={"model": "voxtral-mini-latest", "stream": "false", **data},
            files=files,
        )


def test_mistral_reference_limits_answer_the_documented_400s(live_server: LiveServer) -> None:
    clip = b64(tone_wav(4.0))
    nine = post(live_server, {f"s{i}": clip for i in range(9)}, diarize="true")
    assert nine.status_code == 400
    assert nine.json()["message"] == "At most 8 speaker references are supported, got 9"
    short = post(live_server, {"ann": b64(tone_wav(1.0))}, diarize="true")
    assert short.status_code == 400 and "3 to 15 s" in short.json()["message"]
    long = post(live_server, {"ann": b64(tone_wav(16.0))}, diarize="true")
    assert long.status_code == 400 and "3 to 15 s" in long.json()["message"]
    undiarized = post(live_server, {"ann": clip}, diarize="false")
    assert undiarized.status_code == 400 and "diarize" in undiarized.json()["message"]
    silent = post(live_server, {"ann": b64(tone_wav(4.0, amp=0.0))}, diarize="true")
    assert silent.status_code == 400 and "No speech" in silent.json()["message"]


def test_a_reference_is_embedded_once_and_only_for_audio_that_passed_its_checks(
    live_server: LiveServer, fake_engines: list[object]
) -> None:
    diarizer = fake_engines[1]
    assert isinstance(diarizer, FakeDiarizer)
    bob = {"bob": b64(tone_wav(4.0, freq=440, amp=0.3))}
    for _ in range(2):
        answer = post(live_server, bob, diarize="true")
        assert answer.status_code == 200
        assert [s["speaker_id"] for s in answer.json()["segments"]] == ["speaker_1", "bob", "bob"]
    assert diarizer.embeds == 1  # the second request's voice print was remembered
    ann = {"ann": b64(tone_wav(4.0, freq=330, amp=0.3))}
    bad = post(live_server, ann, audio=b"RIFF not really audio", diarize="true")
    assert (bad.status_code, bad.json()["param"]) == (400, "file")
    assert diarizer.embeds == 1  # the request's own audio failed first: ann never embedded


def test_openai_diarized_json_with_known_speakers(oai: openai.OpenAI) -> None:
    result = oai.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("talk.wav", two_voices()),
        response_format="diarized_json",
        chunking_strategy="auto",
        known_speaker_names=["agent"],
        known_speaker_references=[f"data:audio/wav;base64,{b64(tone_wav(4.0, freq=220))}"],
    )
    assert result.task == "transcribe"
    assert [(s.speaker, s.text) for s in result.segments] == [
        ("agent", "one two three"),
        ("A", "four."),
        ("A", "five six seven eight."),
    ]
    assert result.segments[0].type == "transcript.text.segment"
    assert result.segments[0].id == "seg_0"
    assert result.text == "one two three four. five six seven eight."


def test_openai_diarized_stream_has_segment_events(oai: openai.OpenAI) -> None:
    stream = oai.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("talk.wav", two_voices()),
        response_format="diarized_json",
        stream=True,
    )
    events = list(stream)
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert [(s.speaker, s.text) for s in segments] == [  # type: ignore[union-attr]
        ("A", "one two three"),
        ("B", "four."),
        ("B", "five six seven eight."),
    ]
    assert events[-1].type == "transcript.text.done"


def test_openai_known_speakers_must_pair_up(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("talk.wav", two_voices()),
            response_format="diarized_json",
            known_speaker_names=["agent", "customer"],
            known_speaker_references=[f"data:audio/wav;base64,{b64(tone_wav(4.0))}"],
        )
    assert "one name per clip" in str(caught.value)


def test_openai_takes_at_most_four_known_speakers(oai: openai.OpenAI) -> None:
    clip = f"data:audio/wav;base64,{b64(tone_wav(4.0))}"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("talk.wav", two_voices()),
            response_format="diarized_json",
            known_speaker_names=["a", "b", "c", "d", "e"],
            known_speaker_references=[clip] * 5,
        )
    assert "At most 4 speaker references are supported, got 5" in caught.value.message
    assert caught.value.body["param"] == "known_speaker_references"  # type: ignore[index]


def test_model_cards_say_which_models_diarize(live_server: LiveServer) -> None:
    with live_server.client() as client:
        models = client.get("/v1/models").json()["data"]
    card = next(m for m in models if m["id"] == "fake-stt")
    assert card["audio_transcription_capabilities"]["diarization"] is True
