"""The ``/voices`` cloning API (seed 003) over raw HTTP against a live server with the fake
engines, and the voice library shared by every shape: one voice, one limit, one soft delete."""

from __future__ import annotations

import asyncio
import base64
import http.server
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.support.audio_samples import pcm16_wav, tone_wav
from tests.support.decode import decode_bytes
from tests.support.live_server import LiveServer, run_server
from voxserve.audio.encode import encode
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


def make_settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0, **sections)


def tone(seconds: float = 3.0, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t + 2 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def m4a(seconds: float = 3.0, rate: int = 24000) -> bytes:
    samples = tone(seconds, rate)
    buf = io.BytesIO()
    with av.open(buf, "w", format="ipod") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024], format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def encoded(fmt: str, seconds: float = 3.0) -> bytes:
    return encode(tone(seconds), 24000, fmt)


def without_id3(mp3: bytes) -> bytes:
    size = 0
    for byte in mp3[6:10]:
        size = (size << 7) | byte
    return mp3[10 + size :]


def upload(
    client: httpx.Client, data: bytes, filename: str = "sample.wav", **form: Any
) -> httpx.Response:
    return client.post(
        "/voices", files={"file": (filename, data, "application/octet-stream")}, data=form
    )


def ok_data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["message"]) == (0, "success")
    return body["data"]


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["data"] is None
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def custom_total(client: httpx.Client) -> int:
    return int(ok_data(client.get("/voices"))["total"])


# ------------------------------------------------------------------------------------ create


@pytest.mark.parametrize(
    ("make", "filename"),
    [
        (lambda: tone_wav(3.0), "a.wav"),
        (lambda: encoded("mp3"), "a.mp3"),
        (lambda: without_id3(encoded("mp3")), "a.mp3"),
        (lambda: m4a(), "a.m4a"),
        (lambda: tone_wav(3.0), "named-wrong.mp3"),  # the content decides, not the name
    ],
)
def test_wav_mp3_and_m4a_are_accepted(live_server: LiveServer, make: Any, filename: str) -> None:
    with live_server.client() as client:
        voice = ok_data(upload(client, make(), filename, display_name="Mine", language="en"))
        assert voice["display_name"] == "Mine"
        assert voice["voice_type"] == "custom"
        assert voice["language"] == "en"
        assert voice["duration"] == pytest.approx(3.0, abs=0.1)
        assert ok_data(client.get(f"/voices/{voice['voice_id']}")) == voice


@pytest.mark.parametrize(
    ("make", "filename"),
    [
        (lambda: encoded("flac"), "a.wav"),
        (lambda: encoded("opus"), "a.mp3"),
        (lambda: encoded("aac"), "a.m4a"),  # ADTS AAC is not M4A
        (lambda: b"just some text, not audio at all" * 20, "a.wav"),
        (lambda: b"RIFF" + b"\x00" * 40, "a.wav"),  # RIFF but not WAVE
    ],
)
def test_other_file_types_are_400(live_server: LiveServer, make: Any, filename: str) -> None:
    with live_server.client() as client:
        message = assert_error(upload(client, make(), filename), 400)
        assert "only WAV, MP3 and M4A" in message
        assert custom_total(client) == 0
    assert not list((live_server.settings.resolved_blob_dir / "voices").rglob("*.wav"))


def test_signature_but_broken_audio_is_422(live_server: LiveServer) -> None:
    with live_server.client() as client:
        broken = tone_wav(3.0)[:12] + b"\x00" * 200
        assert "decoded" in assert_error(upload(client, broken), 422)
        assert custom_total(client) == 0


def test_bad_requests(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert "exactly one" in assert_error(
            client.post("/voices", data={"display_name": "x"}), 400
        )
        both = client.post(
            "/voices",
            files={"file": ("a.wav", tone_wav(3.0), "audio/wav")},
            data={"voice_url": "https://example.com/a.wav"},
        )
        assert "exactly one" in assert_error(both, 400)
        assert "at least" in assert_error(upload(client, tone_wav(1.0)), 422)
        assert_error(upload(client, tone_wav(3.0), denoise="maybe"), 422)
        assert_error(upload(client, tone_wav(3.0), language="English!"), 422)
        assert_error(client.get("/voices", params={"limit": 0}), 422)
        assert_error(client.get("/voices", params={"skip": -1}), 422)
        assert_error(client.get("/voices", params={"voice_type": "other"}), 422)
        assert_error(client.get("/voices/does-not-exist"), 404)
        assert_error(client.delete("/voices/does-not-exist"), 404)
        assert custom_total(client) == 0


def test_default_name_comes_from_the_file(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert (
            ok_data(upload(client, tone_wav(3.0), "Grandma reading.wav"))["display_name"]
            == "Grandma reading"
        )


def noise_floor_db(wav: bytes) -> float:
    """Level of the quietest tenth of 20 ms frames: the noise between the bursts."""
    samples, rate = decode_bytes(wav)
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    energy = np.sort(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(10 * np.log10(np.mean(energy[: len(energy) // 10]) + 1e-12))


def test_denoise_reduces_noise_before_the_sample_is_stored(live_server: LiveServer) -> None:
    rate = 16000
    t = np.arange(4 * rate) / rate
    bursts = (np.sin(2 * np.pi * 2 * t) > 0).astype(np.float64)  # on/off like words and pauses
    noisy = 0.4 * bursts * np.sin(2 * np.pi * 300 * t) + 0.03 * np.random.default_rng(
        1
    ).standard_normal(len(t))
    sample = pcm16_wav(noisy, rate)
    with live_server.client() as client:
        plain = ok_data(upload(client, sample, denoise="false"))["voice_id"]
        cleaned = ok_data(upload(client, sample, denoise="true"))["voice_id"]
        stored = [client.get(f"/v1/audio/voices/{v}/sample").content for v in (plain, cleaned)]
    assert noise_floor_db(stored[1]) < noise_floor_db(stored[0]) - 6


# ---------------------------------------------------------------------------------- voice_url


def test_voice_url_of_a_signed_file_url_is_read_locally(live_server: LiveServer) -> None:
    with live_server.client() as client:
        file_id = client.post("/v1/files", files={"file": ("s.wav", tone_wav(3.0))}).json()["id"]
        url = client.get(f"/v1/files/{file_id}/url").json()["url"]
        voice = ok_data(client.post("/voices", data={"voice_url": url}))
        assert voice["duration"] == pytest.approx(3.0, abs=0.1)


def test_voice_url_to_a_private_address_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post("/voices", data={"voice_url": "http://127.0.0.1:9/sample.wav"})
        assert "voice_url" in assert_error(response, 400)
        assert "voice_url" in assert_error(
            client.post("/voices", data={"voice_url": "ftp://x/y.wav"}), 400
        )


@pytest.fixture
def file_server() -> Iterator[str]:
    bodies = {"/sample.mp3": encoded("mp3"), "/sample.flac": encoded("flac")}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_voice_url_is_fetched_and_checked(tmp_path: Path, file_server: str) -> None:
    settings = make_settings(tmp_path, fetch={"allow_private_addresses": True})
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        voice = ok_data(client.post("/voices", data={"voice_url": f"{file_server}/sample.mp3"}))
        assert voice["display_name"] == "sample"
        wrong = client.post("/voices", data={"voice_url": f"{file_server}/sample.flac"})
        assert "only WAV, MP3 and M4A" in assert_error(wrong, 400)
        missing = client.post("/voices", data={"voice_url": f"{file_server}/nothing.wav"})
        assert "404" in assert_error(missing, 400)
        assert custom_total(client) == 1


# ---------------------------------------------------------------------------------- list, get


def test_list_custom_and_built_in_with_keyword_and_pages(live_server: LiveServer) -> None:
    with live_server.client() as client:
        for i, (name, description, tags) in enumerate(
            [
                ("Narrator", "deep and calm", ["audiobook"]),
                ("Host", "bright", ["podcast"]),
                ("Guest", None, None),
            ]
        ):
            body = {
                "name": name,
                "sample_audio": base64.b64encode(tone_wav(3.0)).decode(),
                "description": description,
                "tags": tags,
            }
            assert client.post("/v1/audio/voices", json=body).status_code == 200, i
        everyone = ok_data(client.get("/voices"))
        assert [v["display_name"] for v in everyone["voices"]] == ["Guest", "Host", "Narrator"]
        assert (everyone["total"], everyone["skip"], everyone["limit"]) == (3, 0, 10)
        for keyword, names in [
            ("narr", ["Narrator"]),
            ("CALM", ["Narrator"]),
            ("podcast", ["Host"]),
            ("zzz", []),
        ]:
            found = ok_data(client.get("/voices", params={"keyword": keyword}))["voices"]
            assert [v["display_name"] for v in found] == names, keyword
        second = ok_data(client.get("/voices", params={"skip": 1, "limit": 2}))
        assert [v["display_name"] for v in second["voices"]] == ["Narrator"]
        assert second["total"] == 3
        built_in = ok_data(client.get("/voices", params={"voice_type": "built-in"}))
        assert {v["voice_id"] for v in built_in["voices"]} == {"fake-tts:alice", "fake-tts:bob"}
        assert all(v["voice_type"] == "built-in" for v in built_in["voices"])
        bob = ok_data(client.get("/voices", params={"voice_type": "built-in", "keyword": "bob"}))
        assert [v["voice_id"] for v in bob["voices"]] == ["fake-tts:bob"]
        preset = ok_data(client.get("/voices/fake-tts:bob"))
        assert (preset["languages"], preset["gender"]) == (["en", "fr"], "male")


# ------------------------------------------------------------------------- one voice everywhere


def test_a_voice_cloned_here_is_the_same_voice_everywhere_until_soft_deleted(
    tmp_path: Path,
) -> None:
    retention = {"deleted_voice_days": 2.0 / 86400, "cleanup_interval_seconds": 0.2}
    settings = make_settings(tmp_path, retention=retention)
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        voice = ok_data(upload(client, tone_wav(3.0), display_name="Shared"))["voice_id"]
        mistral = Mistral(server_url=server.url)
        listed = mistral.audio.voices.search(page_size=10, type_="custom")
        assert listed is not None
        assert [v.id for v in listed.result.data] == [voice]
        assert mistral.audio.voices.get(voice_id=voice).name == "Shared"
        speech = mistral.audio.speech.complete(
            input="Hello.", voice_id=voice, response_format="wav"
        )
        assert base64.b64decode(speech.audio_data)[:4] == b"RIFF"
        generated = client.post("/api/tts/generate", json={"input": "Hello.", "voice_id": voice})
        assert generated.json()["code"] == 0
        assert [v["id"] for v in client.get("/api/tts/voices/mine").json()["data"]["voices"]] == [
            voice
        ]

        deleted = ok_data(client.delete(f"/voices/{voice}"))
        assert deleted["voice_id"] == voice and deleted["delete_time"].endswith("Z")
        sample = next((settings.resolved_blob_dir / "voices").rglob("sample-main-*.wav"))
        assert sample.exists()  # soft: the sample stays for the retention period

        assert custom_total(client) == 0
        assert_error(client.get(f"/voices/{voice}"), 404)
        assert_error(client.delete(f"/voices/{voice}"), 404)
        after = mistral.audio.voices.search(page_size=10, type_="custom")
        assert after is not None and after.result.data == []
        with pytest.raises(SDKError) as missing:
            mistral.audio.voices.get(voice_id=voice)
        assert missing.value.status_code == 404
        assert client.get(f"/v1/audio/voices/{voice}").status_code == 404
        assert client.get("/api/tts/voices/mine").json()["data"]["total"] == 0
        gone = client.post("/api/tts/generate", json={"input": "Hello.", "voice_id": voice})
        assert (gone.status_code, gone.json()["code"]) == (404, 40402)
        assert (
            client.post("/v1/audio/speech", json={"input": "Hi.", "voice_id": voice}).status_code
            == 404
        )
        assert (
            client.post("/v1/audio/speech", json={"input": "Hi.", "voice": voice}).status_code
            == 404
        )

        deadline = time.monotonic() + 15
        while sample.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not sample.exists()  # purged by the server's own cleanup after the retention


def test_voice_limit_counts_every_shape(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"max_custom_voices": 3})
    sample = tone_wav(6.0)
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        ok_data(upload(client, sample))
        mistral_body = {"name": "m", "sample_audio": base64.b64encode(sample).decode()}
        assert client.post("/v1/audio/voices", json=mistral_body).status_code == 200
        gateway_body = {"name": "g", "ref_audio": base64.b64encode(sample).decode()}
        assert client.post("/api/tts/voices/clone", json=gateway_body).json()["code"] == 0

        assert "limit" in assert_error(upload(client, sample), 400).lower()
        refused = client.post("/api/tts/voices/clone", json=gateway_body)
        assert (refused.status_code, refused.json()["code"]) == (400, 40003)
        assert client.post("/v1/audio/voices", json=mistral_body).status_code == 400

        first = ok_data(client.get("/voices"))["voices"][-1]["voice_id"]
        ok_data(client.delete(f"/voices/{first}"))  # a soft-deleted voice no longer counts
        ok_data(upload(client, sample))
        assert custom_total(client) == 3


def test_owners_see_only_their_voices(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    async def keys() -> list[str]:
        async with open_services(settings, engines=[FakeTTSEngine()]) as services:
            return [(await services.auth.create_key(name)).secret for name in ("alice", "bob")]

    alice_key, bob_key = asyncio.run(keys())
    with run_server(settings, [FakeTTSEngine()]) as server:
        with server.client() as anonymous:
            assert_error(anonymous.get("/voices"), 401)
            assert_error(upload(anonymous, tone_wav(3.0)), 401)
        with server.client(alice_key) as alice, server.client(bob_key) as bob:
            voice = ok_data(upload(alice, tone_wav(3.0)))["voice_id"]
            assert custom_total(bob) == 0
            assert_error(bob.get(f"/voices/{voice}"), 404)
            assert_error(bob.delete(f"/voices/{voice}"), 404)
            assert ok_data(alice.get(f"/voices/{voice}"))["voice_id"] == voice
