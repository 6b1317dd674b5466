"""Transcription and files through the official SDKs against a live server (fake STT engine).

The fake engine answers a fixed transcript; these tests prove the wire shapes, sources, formats
and errors. Recognition quality is proven with real weights in tests/e2e (marker ``model``).
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

TRANSCRIPT = "This is a fake transcript. It has two sentences."


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]


@pytest.fixture
def mistral(live_server: LiveServer) -> Mistral:
    return Mistral(server_url=live_server.url)


@pytest.fixture
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any")


def wav_file() -> dict[str, object]:
    return {"file_name": "in.wav", "content": tone_wav(3.2)}


def test_complete_with_file(mistral: Mistral) -> None:
    result = mistral.audio.transcriptions.complete(
        model="voxtral-mini-latest",
        file=wav_file(),
        timestamp_granularities=["segment", "word"],  # type: ignore[arg-type]
        context_bias=["Voxtral", "ComfyUI"],
    )
    assert result.text == TRANSCRIPT
    assert result.language == "en"
    assert result.model == "voxtral-mini-latest"
    assert result.usage.prompt_audio_seconds == 4  # 3.2 s, rounded up to a whole second
    assert len(result.segments) == 2
    first = result.segments[0]
    assert first.start == 0.0
    assert first.end is not None and first.end <= 3.2
    words = first.model_extra["words"]  # type: ignore[index]
    assert [w["word"] for w in words] == ["This", "is", "a", "fake", "transcript."]


def test_stream_with_file(mistral: Mistral) -> None:
    events = list(mistral.audio.transcriptions.stream(model="voxtral-mini-latest", file=wav_file()))  # type: ignore[arg-type]
    kinds = [e.event for e in events]
    assert kinds[0] == "transcription.language"
    assert kinds.count("transcription.segment") == 2
    assert kinds[-1] == "transcription.done"
    deltas = "".join(e.data.text for e in events if e.event == "transcription.text.delta")  # type: ignore[union-attr]
    assert deltas == TRANSCRIPT


def test_file_id_and_signed_url(mistral: Mistral) -> None:
    uploaded = mistral.files.upload(file=wav_file(), purpose="audio")  # type: ignore[arg-type]
    assert uploaded.size_bytes == len(tone_wav(3.2))
    by_id = mistral.audio.transcriptions.complete(model="voxtral-mini-latest", file_id=uploaded.id)
    assert by_id.text == TRANSCRIPT

    signed = mistral.files.get_signed_url(file_id=uploaded.id, expiry=1)
    assert httpx.get(signed.url).content == tone_wav(3.2)  # no API key needed
    by_url = mistral.audio.transcriptions.complete(model="voxtral-mini-latest", file_url=signed.url)
    assert by_url.text == TRANSCRIPT


def test_files_crud(mistral: Mistral) -> None:
    uploaded = mistral.files.upload(file=wav_file(), purpose="audio")  # type: ignore[arg-type]
    assert mistral.files.retrieve(file_id=uploaded.id).filename == "in.wav"
    listing = mistral.files.list()
    assert [f.id for f in listing.data] == [uploaded.id]
    assert mistral.files.download(file_id=uploaded.id).read() == tone_wav(3.2)
    assert mistral.files.delete(file_id=uploaded.id).deleted is True
    with pytest.raises(SDKError) as info:
        mistral.files.retrieve(file_id=uploaded.id)
    assert info.value.status_code == 404


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_openai_formats(oai: openai.OpenAI, fmt: str) -> None:
    result = oai.audio.transcriptions.create(
        model="whisper-1",
        file=("in.wav", tone_wav(3.2)),
        response_format=fmt,  # type: ignore[arg-type]
        timestamp_granularities=["word", "segment"] if fmt == "verbose_json" else None,  # type: ignore[arg-type]
    )
    if fmt == "json":
        assert result.text == TRANSCRIPT  # type: ignore[union-attr]
    elif fmt == "verbose_json":
        assert result.text == TRANSCRIPT  # type: ignore[union-attr]
        assert len(result.segments) == 2  # type: ignore[union-attr, arg-type]
        assert len(result.words) == 9  # type: ignore[union-attr, arg-type]
    elif fmt == "text":
        assert str(result).strip() == TRANSCRIPT
    elif fmt == "srt":
        assert "00:00:00,000 --> " in str(result)
    else:
        assert str(result).startswith("WEBVTT")


def test_openai_stream(oai: openai.OpenAI) -> None:
    stream = oai.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("in.wav", tone_wav(3.2)), stream=True
    )
    events = list(stream)
    assert events[-1].type == "transcript.text.done"
    assert events[-1].text == TRANSCRIPT  # type: ignore[union-attr]


def post(server: LiveServer, files: dict[str, object] | None = None, **data: str) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/v1/audio/transcriptions", data={"model": "voxtral-mini-latest", **data}, files=files
        )  # type: ignore[arg-type]


def test_errors(live_server: LiveServer) -> None:
    bad = post(live_server, files={"file": ("x.wav", b"not audio at all" * 100)})
    assert bad.status_code == 400 and "decoded" in bad.json()["message"]
    empty = post(live_server, files={"file": ("x.wav", b"")})
    assert empty.status_code == 400
    both = post(live_server, files={"file": ("x.wav", tone_wav())}, file_id="file-1")
    assert both.status_code == 400 and "exactly one" in both.json()["message"]
    none = post(live_server)
    assert none.status_code == 400
    unknown = post(live_server, file_id="file-doesnotexist")
    assert unknown.status_code == 404
    refused = post(live_server, file_url="http://127.0.0.1:1/a.wav")
    assert refused.status_code == 400 and "loopback" in refused.json()["message"]
    diarize = post(live_server, files={"file": ("x.wav", tone_wav())}, diarize="true")
    assert diarize.status_code == 400 and "Diarization" in diarize.json()["message"]
    model = post(live_server, files={"file": ("x.wav", tone_wav())}, model="no-such-model")
    assert model.status_code == 400


def test_file_url_from_loopback_server_when_allowed(tmp_path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    import http.server
    import threading

    (tmp_path / "a.wav").write_bytes(tone_wav(2.0))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    allowed = settings.model_copy(
        update={"fetch": settings.fetch.model_copy(update={"allow_private_addresses": True})}
    )
    try:
        with run_server(allowed, [FakeSTTEngine(TRANSCRIPT)]) as server:
            mistral = Mistral(server_url=server.url)
            url = f"http://127.0.0.1:{httpd.server_address[1]}/a.wav"
            result = mistral.audio.transcriptions.complete(
                model="voxtral-mini-latest", file_url=url
            )
            assert result.text == TRANSCRIPT
            assert result.usage.prompt_audio_seconds == 2
    finally:
        httpd.shutdown()


def test_other_owner_file_is_404(settings: Settings) -> None:
    import asyncio

    from voxserve.bootstrap import open_services

    async def keys() -> tuple[str, str]:
        async with open_services(settings, engines=[FakeSTTEngine()]) as s:
            return (await s.auth.create_key("a")).secret, (await s.auth.create_key("b")).secret

    alice, bob = asyncio.run(keys())
    with run_server(settings, [FakeSTTEngine()]) as server:
        a, b = (
            Mistral(api_key=alice, server_url=server.url),
            Mistral(api_key=bob, server_url=server.url),
        )
        uploaded = a.files.upload(file=wav_file(), purpose="audio")  # type: ignore[arg-type]
        for call in (
            lambda: b.files.retrieve(file_id=uploaded.id),
            lambda: b.audio.transcriptions.complete(
                model="voxtral-mini-latest", file_id=uploaded.id
            ),
        ):
            with pytest.raises(SDKError) as info:
                call()
            assert info.value.status_code == 404
            assert json.loads(info.value.body)["object"] == "error"
