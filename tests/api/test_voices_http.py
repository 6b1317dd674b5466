"""Voice library over raw HTTP: auth, ownership, bad input, limits, persistence."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import pytest

from tests.support.audio_samples import silence_wav, tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def voice_body(name: str = "v", sample: bytes | None = None) -> dict[str, object]:
    return {"name": name, "sample_audio": b64(sample if sample is not None else tone_wav(3.0))}


async def make_key(settings: Settings, name: str) -> str:
    async with open_services(settings, engines=[FakeTTSEngine()]) as services:
        return (await services.auth.create_key(name)).secret


def assert_mistral_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["object"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def two_keys(settings: Settings) -> tuple[str, str]:
    async def both() -> tuple[str, str]:
        return await make_key(settings, "alice"), await make_key(settings, "bob")

    return asyncio.run(both())


def test_keys_required_once_any_exists(two_keys: tuple[str, str], live_server: LiveServer) -> None:
    with live_server.client() as anon:
        assert_mistral_error(anon.get("/v1/audio/voices"), 401)
    with live_server.client("vx-wrong") as wrong:
        assert_mistral_error(wrong.get("/v1/audio/voices"), 401)
    alice, _ = two_keys
    with httpx.Client(base_url=live_server.url, headers={"x-api-key": alice}) as via_header:
        assert via_header.get("/v1/audio/voices").status_code == 200


def test_other_owners_voice_is_404(two_keys: tuple[str, str], live_server: LiveServer) -> None:
    alice_key, bob_key = two_keys
    with live_server.client(alice_key) as alice, live_server.client(bob_key) as bob:
        created = alice.post("/v1/audio/voices", json=voice_body())
        assert created.status_code == 200
        voice_id = created.json()["id"]
        for method, path in [
            ("GET", f"/v1/audio/voices/{voice_id}"),
            ("GET", f"/v1/audio/voices/{voice_id}/sample"),
            ("PATCH", f"/v1/audio/voices/{voice_id}"),
            ("DELETE", f"/v1/audio/voices/{voice_id}"),
        ]:
            response = bob.request(method, path, json={} if method == "PATCH" else None)
            body = assert_mistral_error(response, 404)
            assert body["message"] == f"Voice '{voice_id}' not found."
        assert bob.get("/v1/audio/voices", params={"type": "custom"}).json()["total"] == 0
        assert alice.get(f"/v1/audio/voices/{voice_id}").status_code == 200


@pytest.mark.parametrize(
    ("sample", "needle"),
    [
        ("!!!", "base64"),
        (b64(b"this is not audio at all" * 20), "decoded"),
        (b64(silence_wav(3.0)), "silent"),
        (b64(tone_wav(0.5)), "at least"),
    ],
)
def test_bad_samples_are_422_with_reason(live_server: LiveServer, sample: str, needle: str) -> None:
    with live_server.client() as client:
        response = client.post("/v1/audio/voices", json={"name": "x", "sample_audio": sample})
        body = assert_mistral_error(response, 422)
        assert needle in str(body["message"]).lower()
        assert body["detail"]
        assert client.get("/v1/audio/voices", params={"type": "custom"}).json()["total"] == 0
    assert not list((live_server.settings.resolved_blob_dir / "voices").rglob("*.wav"))


def test_missing_fields_are_422(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert_mistral_error(client.post("/v1/audio/voices", json={"name": "x"}), 422)
        assert_mistral_error(client.post("/v1/audio/voices", json={"sample_audio": "UklG"}), 422)
        assert_mistral_error(client.get("/v1/audio/voices", params={"limit": 0}), 422)
        assert_mistral_error(client.get("/v1/audio/voices", params={"limit": 101}), 422)
        assert_mistral_error(client.get("/v2/audio/voices", params={"page_token": "zz"}), 422)


def test_long_sample_is_trimmed(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post("/v1/audio/voices", json=voice_body(sample=tone_wav(34.0)))
        assert response.status_code == 200
        assert response.json()["trimmed_seconds"] == pytest.approx(4.0, abs=0.05)


def test_body_over_limit_is_413(tmp_path: Path) -> None:
    limits = {"max_request_bytes": 100_000, "max_upload_bytes": 400_000}
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0, limits=limits)  # type: ignore[arg-type]
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        response = client.post("/v1/audio/voices", json=voice_body(sample=tone_wav(10.0)))
        assert_mistral_error(response, 413)
        upload = {"file": ("a.wav", tone_wav(10.0))}  # 320 kB: over the JSON limit, under uploads'
        assert client.post("/v1/files", files=upload, data={"purpose": "audio"}).status_code == 200
        big = {"file": ("a.wav", tone_wav(15.0))}
        assert_mistral_error(client.post("/v1/files", files=big, data={"purpose": "audio"}), 413)


def test_preset_voices_cannot_be_deleted(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert_mistral_error(client.delete("/v1/audio/voices/fake-tts:alice"), 400)


def test_voice_limit_holds_under_concurrent_creates(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        host="127.0.0.1",
        port=0,
        limits={"max_custom_voices": 20},
        decode={"queue": 32},  # every create is admitted: the limit, not admission, is tested
    )  # type: ignore[arg-type]
    sample = tone_wav(2.5)

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/v1/audio/voices", json=voice_body(f"v{i}", sample))
                    for i in range(25)
                )
            )
        return [r.status_code for r in responses]

    with run_server(settings, [FakeTTSEngine()]) as server:
        statuses = asyncio.run(burst(server.url))
        assert statuses.count(200) == 20
        assert statuses.count(400) == 5
        with server.client() as client:
            assert client.get("/v1/audio/voices", params={"type": "custom"}).json()["total"] == 20
    stored = list((settings.resolved_blob_dir / "voices").rglob("*.wav"))
    assert len(stored) == 20  # the refused creates left no sample behind


def test_data_survives_restart(settings: Settings) -> None:
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        voice_id = client.post("/v1/audio/voices", json=voice_body("keep")).json()["id"]
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        assert client.get(f"/v1/audio/voices/{voice_id}").json()["name"] == "keep"
        assert client.get(f"/v1/audio/voices/{voice_id}/sample").content[:4] == b"RIFF"


def test_health_and_ready(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert ready.headers["x-request-id"]
        assert client.get("/docs").status_code == 200
