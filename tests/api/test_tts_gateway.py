"""The ``/api/tts`` gateway (seed 002) over raw HTTP against a live server with the fake engines:
generate, stream, stored generations, cloned voices, presets and every error in its envelope."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.audio_samples import tone_wav
from tests.support.decode import decode_bytes
from tests.support.live_server import LiveServer, run_server
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

TEXT = "Hello there. This is the gateway speaking. Goodbye now."
VOICE = "fake-tts:alice"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0, **sections)


def generate(client: httpx.Client, text: str = TEXT, **body: Any) -> httpx.Response:
    return client.post("/api/tts/generate", json={"input": text, "voice_id": VOICE, **body})


def ok_data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0
    return body["data"]


def assert_gateway_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) == {"code", "message"}
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]
    return str(body["message"])


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if lines:
            event = lines[0].removeprefix("event: ")
            events.append((event, json.loads(lines[1].removeprefix("data: "))))
    return events


# ---------------------------------------------------------------------------------- generate


def test_generate_returns_mp3_and_a_url_that_serves_it(live_server: LiveServer) -> None:
    with live_server.client() as client:
        data = ok_data(generate(client))
        audio = base64.b64decode(data["audio_data"])
        assert data["format"] == "mp3"
        assert data["chunks"] == 1
        assert data["credits_used"] == len(TEXT)
        samples, rate = decode_bytes(audio)
        assert 0.5 < len(samples) / rate < 3
        assert data["audio_url"].startswith(live_server.url)
        served = httpx.get(data["audio_url"])  # no key: usable as <audio src>
        assert served.status_code == 200
        assert served.content == audio
        assert served.headers["content-type"] == "audio/mpeg"
        files = client.get("/v1/files", params={"purpose": "generation"}).json()["data"]
        assert [f["id"] for f in files] == [data["generation_id"]]
        assert files[0]["expires_at"] is not None


@pytest.mark.parametrize("fmt", ["wav", "flac", "opus"])
def test_generate_formats(live_server: LiveServer, fmt: str) -> None:
    with live_server.client() as client:
        data = ok_data(generate(client, response_format=fmt))
    assert data["format"] == fmt
    samples, rate = decode_bytes(base64.b64decode(data["audio_data"]))
    assert 0.5 < len(samples) / rate < 3


def test_generate_pcm_is_float32(live_server: LiveServer) -> None:
    with live_server.client() as client:
        data = ok_data(generate(client, response_format="pcm"))
    samples = np.frombuffer(base64.b64decode(data["audio_data"]), dtype="<f4")
    assert 0.1 < np.abs(samples).max() <= 1.0


def test_long_text_is_split_in_sentence_chunks(tmp_path: Path) -> None:
    engine = FakeTTSEngine()
    sentence = "This sentence is part of a long text that the gateway must split. "
    text = (sentence * 38).strip()  # 2,545 characters: three chunks of at most 1,000
    with run_server(make_settings(tmp_path), [engine]) as server, server.client() as client:
        data = ok_data(generate(client, text, response_format="wav"))
    assert len(text) > 2000
    assert data["chunks"] == 3
    assert data["credits_used"] == len(text)
    spoken = [r.text for r in engine.requests]
    assert len(spoken) == 38 and all(s.endswith("split.") for s in spoken)  # whole sentences


def test_speed_changes_the_duration(live_server: LiveServer) -> None:
    with live_server.client() as client:
        normal = ok_data(generate(client, response_format="wav"))
        fast = ok_data(generate(client, response_format="wav", speed=2.0))
    lengths = [len(decode_bytes(base64.b64decode(d["audio_data"]))[0]) for d in (normal, fast)]
    assert lengths[1] == pytest.approx(lengths[0] / 2, rel=0.1)


def test_ref_audio_clones_for_one_request(live_server: LiveServer) -> None:
    with live_server.client() as client:
        body = {"input": TEXT, "ref_audio": b64(tone_wav(4.0)), "response_format": "wav"}
        data = ok_data(client.post("/api/tts/generate", json=body))
    assert len(decode_bytes(base64.b64decode(data["audio_data"]))[0]) > 0


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        ({"input": "a" * 5001, "voice_id": VOICE}, 422, 42201, "limit is 5000"),
        ({"input": "Hello."}, 400, 40001, "voice_id or ref_audio"),
        ({"input": "Hello.", "voice_id": VOICE, "speed": 4.5}, 422, 42201, "speed"),
        ({"input": "Hello.", "voice_id": VOICE, "speed": 0.1}, 422, 42201, "speed"),
        ({"input": "Hello.", "voice_id": "nobody"}, 404, 40402, "nobody"),
        ({"input": "", "voice_id": VOICE}, 422, 42201, "empty"),
        ({"voice_id": VOICE}, 422, 42201, "input"),
        ({"input": "Hi.", "voice_id": VOICE, "response_format": "aac"}, 422, 42201, "format"),
        ({"input": "Hi.", "voice_id": VOICE, "ref_audio": b64(tone_wav())}, 400, 40001, "either"),
        ({"input": "Hi.", "ref_audio": "!!not base64!!"}, 422, 42201, "base64"),
        ({"input": "Hi.", "ref_audio": b64(b"not audio" * 50)}, 422, 42201, "decoded"),
    ],
)
def test_generate_errors(
    live_server: LiveServer, body: dict[str, Any], status: int, code: int, needle: str
) -> None:
    with live_server.client() as client:
        message = assert_gateway_error(client.post("/api/tts/generate", json=body), status, code)
        assert needle in message
        assert client.get("/v1/files", params={"purpose": "generation"}).json()["data"] == []


def test_limit_of_5000_characters_is_inclusive(live_server: LiveServer) -> None:
    with live_server.client() as client:
        data = ok_data(generate(client, "a" * 4999 + ".", response_format="wav"))
    assert data["credits_used"] == 5000
    assert data["chunks"] == 5


def test_unknown_routes_and_methods_answer_in_the_gateway_shape(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert_gateway_error(client.get("/api/tts/nothing-here"), 404, 40401)
        assert_gateway_error(client.get("/api/tts/generate"), 405, 40501)
        not_json = client.post(
            "/api/tts/generate", content=b"{", headers={"content-type": "application/json"}
        )
        assert_gateway_error(not_json, 422, 42201)


def test_engine_failure_is_50001(tmp_path: Path) -> None:
    engine = FakeTTSEngine(fail_on="explode")
    with run_server(make_settings(tmp_path), [engine]) as server, server.client() as client:
        assert_gateway_error(generate(client, "Please explode."), 500, 50001)


def test_busy_engine_is_42901_with_retry_after(tmp_path: Path) -> None:
    engine = FakeTTSEngine(delay=0.2)
    settings = make_settings(tmp_path, engines={"max_queue": 0, "retry_after_seconds": 2})

    async def both(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = {"input": "one two three four five", "voice_id": VOICE}
            return list(
                await asyncio.gather(
                    *(client.post("/api/tts/generate", json=body) for _ in range(2))
                )
            )

    with run_server(settings, [engine]) as server:
        responses = asyncio.run(both(server.url))
    busy = [r for r in responses if r.status_code == 429]
    assert len(busy) == 1
    assert_gateway_error(busy[0], 429, 42901)
    assert busy[0].headers["retry-after"] == "2"


def test_body_too_large_is_41301(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"max_request_bytes": 2048})
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        assert_gateway_error(generate(client, "word " * 1000), 413, 41301)


# ------------------------------------------------------------------------------------ stream


def test_stream_sends_deltas_then_done_default_pcm(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post("/api/tts/stream", json={"input": TEXT, "voice_id": VOICE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "speech.audio.done" and set(names[:-1]) == {"speech.audio.delta"}
    assert len(names) >= 3
    assert events[-1][1] == {"chunks": 1, "credits_used": len(TEXT)}
    pcm = b"".join(base64.b64decode(data["audio_data"]) for _, data in events[:-1])
    samples = np.frombuffer(pcm, dtype="<f4")
    assert 0.5 < len(samples) / 24000 < 3 and np.abs(samples).max() <= 1.0


def test_stream_mp3_pieces_make_one_file(live_server: LiveServer) -> None:
    with live_server.client() as client:
        body = {"input": TEXT, "voice_id": VOICE, "response_format": "mp3"}
        response = client.post("/api/tts/stream", json=body)
    audio = b"".join(
        base64.b64decode(d["audio_data"])
        for n, d in sse_events(response.text)
        if n == "speech.audio.delta"
    )
    samples, rate = decode_bytes(audio)
    assert 0.5 < len(samples) / rate < 3


def test_stream_errors_before_audio_are_real_statuses(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert_gateway_error(client.post("/api/tts/stream", json={"input": "Hi."}), 400, 40001)
        long = {"input": "a" * 5001, "voice_id": VOICE}
        assert_gateway_error(client.post("/api/tts/stream", json=long), 422, 42201)
        speed = {"input": "Hi.", "voice_id": VOICE, "speed": 5}
        assert_gateway_error(client.post("/api/tts/stream", json=speed), 422, 42201)


def test_stream_failure_after_audio_ends_with_error_event(tmp_path: Path) -> None:
    engine = FakeTTSEngine(fail_on="explode")
    with run_server(make_settings(tmp_path), [engine]) as server, server.client() as client:
        body = {"input": "Fine first. Then explode.", "voice_id": VOICE}
        response = client.post("/api/tts/stream", json=body)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[0][0] == "speech.audio.delta"
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == 50001


# -------------------------------------------------------------------------- stored generations


def test_audio_url_lives_for_the_retention_period_then_is_purged(tmp_path: Path) -> None:
    retention = {"generated_audio_hours": 1.5 / 3600, "cleanup_interval_seconds": 0.2}
    settings = make_settings(tmp_path, retention=retention)
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        data = ok_data(generate(client))
        assert httpx.get(data["audio_url"]).status_code == 200
        blobs = settings.resolved_blob_dir / "files"
        assert len(list(blobs.rglob("file-*"))) == 1
        time.sleep(1.6)
        assert httpx.get(data["audio_url"]).status_code == 404
        deadline = time.monotonic() + 10
        while list(blobs.rglob("file-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(blobs.rglob("file-*"))  # the server's cleanup purged it


def test_audio_url_lasts_a_retention_longer_than_a_week(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, retention={"generated_audio_hours": 500})
    with run_server(settings, [FakeTTSEngine()]) as server, server.client() as client:
        url = ok_data(generate(client))["audio_url"]
        assert httpx.get(url).status_code == 200
    expires = int(httpx.URL(url).params["expires"])
    assert abs(expires - (time.time() + 500 * 3600)) < 60


def test_tampered_audio_url_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        url = ok_data(generate(client))["audio_url"]
    assert httpx.get(url[:-4] + "0000").status_code == 404


# ------------------------------------------------------------------------------------ voices


def clone(
    client: httpx.Client, name: str = "My Podcast Voice", seconds: float = 6.0, **extra: Any
) -> httpx.Response:
    body = {"name": name, "ref_audio": b64(tone_wav(seconds)), **extra}
    return client.post("/api/tts/voices/clone", json=body)


def test_clone_list_update_delete(live_server: LiveServer) -> None:
    with live_server.client() as client:
        made = ok_data(clone(client, language="en", gender="male"))
        assert made["name"] == "My Podcast Voice"
        assert made["mistral_voice_id"] == made["id"]
        assert (made["language"], made["gender"]) == ("en", "male")
        assert made["created_at"].endswith("Z")

        page = ok_data(client.get("/api/tts/voices/mine"))
        assert (page["total"], page["page"], page["limit"]) == (1, 1, 50)
        listed = page["voices"][0]
        assert listed["id"] == made["id"] and listed["tags"] == []
        sample = client.get(listed["ref_audio_url"])
        assert sample.status_code == 200 and sample.content[:4] == b"RIFF"

        patch = {
            "name": "Updated Voice Name",
            "language": "fr",
            "gender": "female",
            "tags": ["calm"],
        }
        updated = ok_data(client.patch(f"/api/tts/voices/{made['id']}", json=patch))
        assert updated == {
            "id": made["id"],
            "name": "Updated Voice Name",
            "language": "fr",
            "gender": "female",
            "tags": ["calm"],
        }
        only_name = ok_data(client.patch(f"/api/tts/voices/{made['id']}", json={"name": "N"}))
        assert (only_name["language"], only_name["tags"]) == ("fr", ["calm"])
        mistral_view = client.get(f"/v1/audio/voices/{made['id']}").json()
        assert mistral_view["name"] == "N" and mistral_view["languages"] == ["fr"]

        assert ok_data(client.delete(f"/api/tts/voices/{made['id']}")) == {"id": made["id"]}
        blobs = live_server.settings.resolved_blob_dir / "voices"
        assert not list(blobs.rglob("sample-*.wav"))  # a permanent delete: the sample is gone
        assert ok_data(client.get("/api/tts/voices/mine"))["total"] == 0
        assert_gateway_error(client.delete(f"/api/tts/voices/{made['id']}"), 404, 40402)
        assert_gateway_error(generate(client, voice_id=made["id"]), 404, 40402)


def test_cloned_voice_speaks_in_every_shape(live_server: LiveServer) -> None:
    with live_server.client() as client:
        voice = ok_data(clone(client))["mistral_voice_id"]
        ok_data(generate(client, voice_id=voice))
        mistral = client.post("/v1/audio/speech", json={"input": "Hi.", "voice_id": voice})
        assert mistral.status_code == 200 and mistral.json()["audio_data"]


def test_mine_pages(live_server: LiveServer) -> None:
    with live_server.client() as client:
        ids = [ok_data(clone(client, f"v{i}"))["id"] for i in range(3)]
        first = ok_data(client.get("/api/tts/voices/mine", params={"page": 1, "limit": 2}))
        second = ok_data(client.get("/api/tts/voices/mine", params={"page": 2, "limit": 2}))
    assert first["total"] == second["total"] == 3
    assert [v["id"] for v in first["voices"] + second["voices"]] == ids[::-1]  # newest first
    assert (second["page"], second["limit"]) == (2, 2)


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        ({"name": "short", "ref_audio": b64(tone_wav(3.0))}, 422, 42201, "5 to 30 s"),
        ({"name": "bad", "ref_audio": b64(b"not audio" * 100)}, 422, 42201, "decoded"),
        ({"name": "bad", "ref_audio": "%%%"}, 422, 42201, "base64"),
        ({"ref_audio": b64(tone_wav(6.0))}, 422, 42201, "name"),
        ({"name": "x"}, 422, 42201, "ref_audio"),
        ({"name": "x", "ref_audio": b64(tone_wav(6.0)), "gender": "robot"}, 422, 42201, "gender"),
        (
            {"name": "x", "ref_audio": b64(tone_wav(6.0)), "language": "English!"},
            422,
            42201,
            "language",
        ),
    ],
)
def test_clone_errors(
    live_server: LiveServer, body: dict[str, Any], status: int, code: int, needle: str
) -> None:
    with live_server.client() as client:
        message = assert_gateway_error(
            client.post("/api/tts/voices/clone", json=body), status, code
        )
        assert needle in message
        assert ok_data(client.get("/api/tts/voices/mine"))["total"] == 0


def test_long_sample_is_trimmed_to_30_seconds(live_server: LiveServer) -> None:
    with live_server.client() as client:
        made = ok_data(clone(client, seconds=33.0))
    assert made["trimmed_seconds"] == pytest.approx(3.0, abs=0.05)


def test_voice_errors(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert_gateway_error(client.patch("/api/tts/voices/nope", json={"name": "x"}), 404, 40402)
        assert_gateway_error(client.delete(f"/api/tts/voices/{VOICE}"), 400, 40001)
        voice = ok_data(clone(client))["id"]
        assert_gateway_error(
            client.patch(f"/api/tts/voices/{voice}", json={"name": None}), 422, 42201
        )
        assert_gateway_error(client.get("/api/tts/voices/mine", params={"page": 0}), 422, 42201)
        assert_gateway_error(client.get("/api/tts/voices/mine", params={"limit": 101}), 422, 42201)


def test_presets_list_languages_genders_and_variants(live_server: LiveServer) -> None:
    with live_server.client() as client:
        presets = ok_data(client.get("/api/tts/voices/presets"))
    assert presets["total"] == 2 + 4  # the engine's two, and the named Jane, Paul, Oliver, Marie
    alice = next(v for v in presets["voices"] if v["id"] == VOICE)
    assert alice == {
        "id": VOICE,
        "name": "Alice",
        "language": "en",
        "languages": ["en"],
        "gender": "female",
        "variants": ["happy", "sad"],
        "engine": "fake-tts",
        "variant_ids": None,
        "maps_to": None,
    }


# ---------------------------------------------------------------------------- authentication


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str, str]]:
    settings = make_settings(tmp_path)

    async def keys() -> tuple[str, str]:
        async with open_services(settings, engines=[FakeTTSEngine()]) as services:
            alice = await services.auth.create_key("alice")
            bob = await services.auth.create_key("bob")
            return alice.secret, bob.secret

    alice, bob = asyncio.run(keys())
    with run_server(settings, [FakeTTSEngine(), FakeSTTEngine()]) as server:
        yield server, alice, bob


def test_api_key_is_required(keyed_server: tuple[LiveServer, str, str]) -> None:
    server, alice, _ = keyed_server
    with server.client() as anonymous, server.client("vx-wrong") as wrong:
        for client in (anonymous, wrong):
            assert_gateway_error(generate(client), 401, 40101)
            assert_gateway_error(client.get("/api/tts/voices/mine"), 401, 40101)
            assert_gateway_error(client.post("/api/tts/stream", json={"input": "Hi."}), 401, 40101)
    with server.client(alice) as client:
        ok_data(generate(client))


def test_other_owners_voices_are_not_found(keyed_server: tuple[LiveServer, str, str]) -> None:
    server, alice_key, bob_key = keyed_server
    with server.client(alice_key) as alice, server.client(bob_key) as bob:
        voice = ok_data(clone(alice))["id"]
        assert ok_data(bob.get("/api/tts/voices/mine"))["total"] == 0
        assert_gateway_error(bob.patch(f"/api/tts/voices/{voice}", json={"name": "x"}), 404, 40402)
        assert_gateway_error(bob.delete(f"/api/tts/voices/{voice}"), 404, 40402)
        assert_gateway_error(bob.get(f"/api/tts/voices/{voice}/sample"), 404, 40402)
        assert_gateway_error(generate(bob, voice_id=voice), 404, 40402)
        ok_data(generate(alice, voice_id=voice))
