"""Speech behaviour under load and failure, with the fake engine: limits, queueing, disconnects,
errors before and after the first chunk, tags, usage."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.api.adapters.mistral import convert as mistral_convert
from voxserve.api.adapters.tts_gateway import convert as gateway_convert
from voxserve.bootstrap import open_services
from voxserve.core.b64 import decode_base64
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings

LONG = " ".join(f"Sentence number {i} is here." for i in range(12))


def slow_server(tmp_path: Path, engine: FakeTTSEngine, **engines: object) -> Settings:
    return Settings(data_dir=tmp_path, host="127.0.0.1", port=0, engines=engines)  # type: ignore[arg-type]


def speech(client: httpx.Client, text: str = "Hello there.", **body: object) -> httpx.Response:
    return client.post(
        "/v1/audio/speech",
        json={"input": text, "voice_id": "fake-tts:alice", "response_format": "wav", **body},
    )


def test_eight_requests_against_limit_two_all_end(tmp_path: Path) -> None:
    engine = FakeTTSEngine(max_concurrency=2, delay=0.05)
    settings = slow_server(tmp_path, engine, max_queue=2, retry_after_seconds=3)

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = {"input": "one two three four five six", "voice_id": "fake-tts:alice"}
            return await asyncio.wait_for(
                asyncio.gather(*(client.post("/v1/audio/speech", json=body) for _ in range(8))), 30
            )

    with run_server(settings, [engine]) as server:
        responses = asyncio.run(burst(server.url))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) >= 4
    for r in responses:
        if r.status_code == 429:
            assert r.headers["retry-after"] == "3"
            assert r.json()["type"] == "rate_limit_error"
    assert engine.peak_active <= 2


def test_later_sentences_are_never_refused_for_load(tmp_path: Path) -> None:
    engine = FakeTTSEngine(max_concurrency=1, delay=0.01)
    settings = slow_server(tmp_path, engine, max_queue=1)

    async def run(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            body = {"input": LONG, "voice_id": "fake-tts:alice"}
            return [
                r.status_code
                for r in await asyncio.gather(
                    client.post("/v1/audio/speech", json=body),
                    client.post("/v1/audio/speech", json=body),
                )
            ]

    with run_server(settings, [engine]) as server:
        assert asyncio.run(run(server.url)) == [200, 200]


def test_sentences_are_cut_at_clauses_only_while_others_use_the_engine(tmp_path: Path) -> None:
    engine = FakeTTSEngine(max_concurrency=1, delay=0.01)
    sentence = (
        "When the morning train arrived at the station, the passengers stepped onto the "
        "platform, and the conductor checked their tickets."
    )
    text = f"{sentence} {sentence}"

    async def run(url: str, clients: int) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            body = {"input": text, "voice_id": "fake-tts:alice"}
            posts = (client.post("/v1/audio/speech", json=body) for _ in range(clients))
            return [r.status_code for r in await asyncio.gather(*posts)]

    with run_server(slow_server(tmp_path, engine), [engine]) as server:
        assert asyncio.run(run(server.url, 1)) == [200]
        alone = [r.text for r in engine.requests]
        engine.requests.clear()
        assert asyncio.run(run(server.url, 3)) == [200, 200, 200]
        shared = [r.text for r in engine.requests]
    assert alone == [sentence, sentence]
    assert any(piece.endswith("the station,") for piece in shared)
    assert sorted(shared).count("and the conductor checked their tickets.") >= 3
    assert all(piece in sentence for piece in shared)  # nothing lost or cut inside a clause
    assert sum(len(piece) + 1 for piece in shared) == (len(sentence) + 1) * 6


def test_client_disconnect_frees_the_slot(tmp_path: Path) -> None:
    engine = FakeTTSEngine(max_concurrency=1, delay=0.05)
    settings = slow_server(tmp_path, engine, max_queue=0)
    with run_server(settings, [engine]) as server, server.client() as client:
        body = {
            "input": LONG,
            "voice_id": "fake-tts:alice",
            "stream": True,
            "response_format": "pcm",
        }
        with client.stream("POST", "/v1/audio/speech", json=body) as response:
            assert response.status_code == 200
            next(response.iter_lines())
        deadline = time.monotonic() + 10
        while engine.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.active == 0
        assert speech(client).status_code == 200  # the slot came back (max_queue=0 would 429)


def test_health_answers_while_synthesis_runs(tmp_path: Path) -> None:
    engine = FakeTTSEngine(max_concurrency=2, delay=0.2)
    with run_server(slow_server(tmp_path, engine), [engine]) as server:

        async def run() -> list[float]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                body = {"input": LONG, "voice_id": "fake-tts:alice"}
                work = [
                    asyncio.create_task(client.post("/v1/audio/speech", json=body))
                    for _ in range(2)
                ]
                await asyncio.sleep(0.3)
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    assert (await client.get("/health")).status_code == 200
                    times.append(time.perf_counter() - started)
                await asyncio.gather(*work)
                return times

        assert max(asyncio.run(run())) < 0.5


def test_failure_before_first_chunk_is_a_real_status(tmp_path: Path) -> None:
    engine = FakeTTSEngine(fail_on="explode")
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        plain = speech(client, "explode now.")
        assert plain.status_code == 500
        assert "Traceback" not in plain.text
        streamed = speech(client, "explode now.", stream=True)
        assert streamed.status_code == 500


def test_failure_after_first_chunk_ends_sse_with_error_event(tmp_path: Path) -> None:
    engine = FakeTTSEngine(fail_on="explode")
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        response = speech(client, "Fine first. Then explode.", stream=True, response_format="pcm")
        assert response.status_code == 200
        events = [line for line in response.text.splitlines() if line.startswith("event: ")]
        assert events[0] == "event: speech.audio.delta"
        assert events[-1] == "event: error"


def test_text_limits_and_speed(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert speech(client, "").status_code == 422
        assert speech(client, "   [pace=slow]  ").status_code == 422
        assert speech(client, "a" * 5001).status_code == 422
        assert speech(client, speed=5).status_code == 422
        assert speech(client, speed=0.1).status_code == 422
        assert speech(client, speed=2).status_code == 200


def test_tags_are_not_spoken_and_pace_sets_speed(tmp_path: Path) -> None:
    engine = FakeTTSEngine()
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        assert speech(client, "[emotion=happy]Hello. [pace=slow]Slowly now.").status_code == 200
    texts = [r.text for r in engine.requests]
    assert texts == ["Hello.", "Slowly now."]
    assert [r.speed for r in engine.requests] == [1.0, 0.8]
    assert [r.emotion for r in engine.requests] == ["happy", "happy"]


def test_emotion_tag_picks_the_voice_sample_for_that_emotion(tmp_path: Path) -> None:
    engine = FakeTTSEngine()
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        body = {
            "name": "moody",
            "sample_audio": base64.b64encode(tone_wav(3.0, amp=0.1)).decode(),
            "emotion_samples": {"happy": base64.b64encode(tone_wav(3.0, amp=0.6)).decode()},
        }
        created = client.post("/v1/audio/voices", json=body).json()
        assert created["emotions"] == ["happy"]
        voice = created["id"]
        for text in ("Plain.", "[emotion=happy]Glad.", "[emotion=angry]Unknown emotion."):
            ok = client.post("/v1/audio/speech", json={"input": text, "voice_id": voice})
            assert ok.status_code == 200
    plain, happy, unknown = (r.voice_state for r in engine.requests)
    assert plain != happy
    assert unknown == plain


def test_a_replaced_emotion_sample_is_what_speaks_next(tmp_path: Path) -> None:
    """The cached voice state of an emotion follows its sample: replacing the sample (PATCH
    with emotion_samples) must not leave speech on the state made from the old one."""
    engine = FakeTTSEngine()
    settings = slow_server(tmp_path, engine)
    with run_server(settings, [engine]) as server, server.client() as client:
        body = {
            "name": "moody",
            "sample_audio": base64.b64encode(tone_wav(3.0, amp=0.1)).decode(),
            "emotion_samples": {"happy": base64.b64encode(tone_wav(3.0, amp=0.6)).decode()},
        }
        voice = client.post("/v1/audio/voices", json=body).json()["id"]
        happy = {"input": "[emotion=happy]Glad.", "voice_id": voice}
        assert client.post("/v1/audio/speech", json=happy).status_code == 200
        new = {"emotion_samples": {"happy": base64.b64encode(tone_wav(3.0, amp=0.3)).decode()}}
        assert client.patch(f"/v1/audio/voices/{voice}", json=new).status_code == 200
        assert client.post("/v1/audio/speech", json=happy).status_code == 200
    before, after = (r.voice_state for r in engine.requests)
    assert before != after
    folder = next((settings.resolved_blob_dir / "voices").rglob(voice))
    names = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert len([n for n in names if n.startswith("sample-happy")]) == 1  # the old one is gone
    assert len([n for n in names if "happy" in n and n.endswith(".bin")]) == 1  # one state


def test_usage_recorded_for_successes_only(tmp_path: Path) -> None:
    engine = FakeTTSEngine(fail_on="explode")
    settings = slow_server(tmp_path, engine)
    with run_server(settings, [engine]) as server, server.client() as client:
        assert speech(client, "Twelve chars").status_code == 200
        assert speech(client, "explode.").status_code == 500

    async def totals() -> tuple[int, int]:
        async with open_services(settings, engines=[engine]) as services:
            rows = await services.storage.usage.records("local")
            overall = (await services.storage.usage.totals("local"))[0]
            return overall.characters, len(rows)

    characters, records = asyncio.run(totals())
    assert characters == len("Twelve chars")
    assert records == 2  # the failure is recorded, with nothing charged


def test_sse_frames_have_event_lines(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = speech(client, "Hello. World.", stream=True, response_format="mp3")
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    for block in blocks:
        event, data = block.splitlines()
        assert event.startswith("event: ")
        assert json.loads(data.removeprefix("data: "))["type"] == event.removeprefix("event: ")


def test_voice_state_is_computed_once_per_voice(tmp_path: Path) -> None:
    engine = FakeTTSEngine()
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        body = {"name": "v", "sample_audio": base64.b64encode(tone_wav(3.0)).decode()}
        voice = client.post("/v1/audio/voices", json=body).json()["id"]
        for _ in range(3):
            assert (
                client.post(
                    "/v1/audio/speech", json={"input": "Hi.", "voice_id": voice}
                ).status_code
                == 200
            )
    assert engine.clones == 1
    states = list((tmp_path / "blobs" / "voices").rglob("state/*.bin"))
    assert len(states) == 1


def test_cloning_on_an_engine_that_cannot_clone_says_what_to_install(tmp_path: Path) -> None:
    engine = FakeTTSEngine(cloning=False)
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        body = {"name": "v", "sample_audio": base64.b64encode(tone_wav(3.0)).decode()}
        voice = client.post("/v1/audio/voices", json=body).json()["id"]
        for request in ({"voice_id": voice}, {"ref_audio": body["sample_audio"]}):
            response = client.post("/v1/audio/speech", json={"input": "Hi.", **request})
            assert response.status_code == 400
            assert "pip install 'voxserve[pocket-tts]'" in response.json()["message"]


def test_a_long_ref_audio_is_decoded_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few megabytes of base64 take tens of milliseconds to decode: not on the loop that
    serves every other request (the Mistral and gateway speech routes)."""
    on_loop: list[bool] = []

    def recording(value: str, field: str) -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return decode_base64(value, field)

    monkeypatch.setattr(mistral_convert, "decode_base64", recording)
    monkeypatch.setattr(gateway_convert, "decode_base64", recording)
    engine = FakeTTSEngine()
    reference = base64.b64encode(tone_wav(8.0)).decode()  # over OFF_LOOP_CHARS
    with run_server(slow_server(tmp_path, engine), [engine]) as server, server.client() as client:
        body = {"input": "Hello there.", "ref_audio": reference}
        assert client.post("/v1/audio/speech", json=body).status_code == 200
        assert client.post("/api/tts/generate", json=body).status_code == 200
    assert on_loop == [False, False]
