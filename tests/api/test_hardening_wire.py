"""Bad input answers a 4xx in the shape's own envelope and stores nothing, on SQLite and
PostgreSQL alike (#14 item 6), and an oversized chunked upload answers 413 (item 7)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from mistralai.client import Mistral

from tests.support.backends import (
    BACKENDS,
    assert_mistral_error,
    backend_server,
    custom_voice_count,
    file_count,
    postgres_server_url,  # noqa: F401 (a fixture)
)
from tests.support.live_server import LiveServer
from voxserve.api.wire import MAX_PAGE

WAV = b"RIFF....WAVEfmt "  # any bytes: the files API keeps what it is given


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    yield from backend_server(request, tmp_path)


def upload(client: httpx.Client, name: str = "a.wav", **fields: str) -> httpx.Response:
    content_type = fields.pop("content_type", "audio/wav")
    return client.post("/v1/files", files={"file": (name, WAV, content_type)}, data=fields)


def raw_upload(client: httpx.Client, filename: bytes) -> httpx.Response:
    """An upload whose file name holds bytes as sent (httpx would percent-encode a NUL)."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: audio/wav\r\n\r\n'
        + WAV
        + b"\r\n--b--\r\n"
    )
    return client.post(
        "/v1/files", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )


def test_nul_in_ids_names_and_purposes_answers_422_and_stores_nothing(
    server: LiveServer,
) -> None:
    with server.client() as client:
        for path in ("/v1/files/a%00b", "/v1/audio/voices/a%00b", "/api/tts/voices/a%00b"):
            assert client.get(path).status_code == 422, path
        assert_mistral_error(client.get("/v1/files", params={"purpose": "a\x00b"}), 422)
        assert_mistral_error(upload(client, purpose="au\x00dio"), 422)
        assert_mistral_error(raw_upload(client, b"a\x00.wav"), 422)
        created = client.post("/v1/audio/voices", json={"name": "a\x00b", "sample_audio": "AAAA"})
        assert_mistral_error(created, 422)
        gateway = client.get("/api/tts/voices/mine", params={"page": "1\x00"})
        assert gateway.status_code == 422 and gateway.json()["code"] == 42201
        assert file_count(client) == 0
        assert custom_voice_count(client) == 0


def test_file_fields_as_long_as_their_columns_are_kept_and_longer_ones_answer_422(
    server: LiveServer,
) -> None:
    with server.client() as client:
        kept = upload(client, "n" * 508 + ".wav", purpose="p" * 64, content_type="a/" + "t" * 198)
        assert kept.status_code == 200, kept.text
        assert len(kept.json()["filename"]) == 512
        for refused in (
            upload(client, "n" * 509 + ".wav"),
            upload(client, purpose="p" * 65),
            upload(client, content_type="a/" + "t" * 199),
        ):
            assert "at most" in assert_mistral_error(refused, 422)["message"]
        assert file_count(client) == 1


def test_huge_page_numbers_answer_422_in_each_shape(server: LiveServer) -> None:
    huge = "96076792050570240"
    with server.client() as client:
        assert_mistral_error(client.get("/v1/files", params={"page": huge}), 422)
        assert_mistral_error(client.get("/v1/audio/voices", params={"offset": huge}), 422)
        gateway = client.get("/api/tts/voices/mine", params={"page": huge})
        assert gateway.status_code == 422 and gateway.json()["code"] == 42201
        cloning = client.get("/voices", params={"skip": huge})
        assert cloning.status_code == 422
        last = client.get("/v1/files", params={"page": MAX_PAGE, "page_size": 1000})
        assert last.status_code == 200 and last.json()["data"] == []  # no overflow at the bound


def test_non_latin1_file_names_download_with_rfc5987_filename(server: LiveServer) -> None:
    name = "会議 «résumé» 1;x.wav"
    with server.client() as client:
        file_id = upload(client, name).json()["id"]
        response = client.get(f"/v1/files/{file_id}/content")
        assert response.status_code == 200 and response.content == WAV
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="')
        assert "filename*=UTF-8''" in disposition
        encoded = disposition.split("filename*=UTF-8''")[1]
        from urllib.parse import unquote

        assert unquote(encoded) == name
    downloaded = Mistral(server_url=server.url).files.download(file_id=file_id)
    assert downloaded.read() == WAV


def test_uploaded_names_are_kept_as_data_without_path_parts(server: LiveServer) -> None:
    with server.client() as client:
        for sent, kept in (
            ("../../etc/passwd", "passwd"),
            ("C:\\x\\a.wav", "a.wav"),
            ("..", "upload"),
        ):
            body = upload(client, sent).json()
            assert body["filename"] == kept
            assert client.get(f"/v1/files/{body['id']}").json()["filename"] == kept


def test_lone_surrogate_and_nul_in_speech_input_answer_422_in_each_shape(
    live_server: LiveServer,
) -> None:
    bodies = {
        "/v1/audio/speech": b'{"input": "a\\ud800b", "voice_id": "fake-tts:alice"}',
        "/api/tts/generate": b'{"input": "a\\u0000b", "voice_id": "fake-tts:alice"}',
    }
    headers = {"content-type": "application/json"}
    with live_server.client() as client:
        for path, body in bodies.items():
            response = client.post(path, content=body, headers=headers)
            assert response.status_code == 422, response.text
            assert "must not contain" in response.text
    sdk = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError, match="NUL"):
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="hi\x00")


def test_pace_nan_is_an_unknown_pace_and_never_reaches_the_engine(tmp_path: Path) -> None:
    from tests.support.live_server import run_server
    from voxserve.engines.fake import FakeTTSEngine
    from voxserve.settings import Settings

    engine = FakeTTSEngine()
    settings = Settings(data_dir=tmp_path / "d", models_dir=tmp_path / "m", port=0)
    with run_server(settings, [engine]) as server, server.client() as client:
        for pace in ("nan", "inf", "-inf"):
            text = f"Hello [pace={pace}] there."
            body = {"input": text, "voice_id": "fake-tts:alice", "response_format": "wav"}
            assert client.post("/v1/audio/speech", json=body).status_code == 200
    speeds = [r.speed for r in engine.requests]
    assert speeds and all(0.25 <= s <= 4.0 for s in speeds), speeds


def test_json_nested_100000_deep_answers_422_in_each_shape(live_server: LiveServer) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    headers = {"content-type": "application/json"}
    with live_server.client() as client:
        for path in ("/v1/audio/speech", "/v1/audio/voices", "/v1/chat/completions"):
            response = client.post(path, content=deep, headers=headers)
            assert "nested deeper" in assert_mistral_error(response, 422)["message"], path
        gateway = client.post("/api/tts/generate", content=deep, headers=headers)
        assert gateway.status_code == 422 and gateway.json()["code"] == 42201
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e999", "100000000000000000000000"]
)
def test_non_finite_numbers_and_huge_integers_in_json_answer_422(
    live_server: LiveServer, literal: str
) -> None:
    body = f'{{"model": "tts-1", "voice": "alloy", "input": "hi", "speed": {literal}}}'
    with live_server.client() as client:
        response = client.post(
            "/v1/audio/speech", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text


def test_non_finite_form_numbers_answer_422(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions",
            data={"model": "voxtral-mini-latest", "file_id": "x", "temperature": "nan"},
        )
    assert "finite" in assert_mistral_error(response, 422)["message"]


def test_oversized_chunked_upload_answers_413(tmp_path: Path) -> None:
    from tests.support.live_server import run_server
    from voxserve.engines.fake import FakeSTTEngine
    from voxserve.settings import Settings

    settings = Settings(data_dir=tmp_path / "d", models_dir=tmp_path / "m", port=0)
    settings.limits.max_upload_bytes = 1024 * 1024
    boundary = "vxboundary"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        for _ in range(64):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    with run_server(settings, [FakeSTTEngine()]) as server, server.client() as client:
        for path in ("/v1/files", "/v1/audio/transcriptions"):
            response = client.post(path, content=chunks(), headers=headers)
            assert_mistral_error(response, 413)
        assert file_count(client) == 0


def test_out_of_range_numbers_in_query_and_body_answer_4xx(server: LiveServer) -> None:
    with server.client() as client:
        for expires in ("²", "9" * 5000, "-1"):
            signed = client.get("/v1/files/f/signed", params={"expires": expires, "signature": "s"})
            assert signed.status_code == 404, signed.text
        for limit in ("96076792050570240", "-96076792050570240"):
            assert client.get("/v1/usage", params={"limit": limit}).status_code == 422
        body = {"name": "v", "sample_audio": "AAAA", "retention_notice": 2**40}
        assert_mistral_error(client.post("/v1/audio/voices", json=body), 422)
        assert custom_voice_count(client) == 0
