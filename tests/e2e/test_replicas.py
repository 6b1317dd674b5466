"""Three ``voxserve serve`` processes on one PostgreSQL and one S3 bucket (an S3 emulator,
moto's server), driven round-robin as a load balancer would: what one replica stores, the
others serve; limits and credits hold across them.

Each replica is the installed ``voxserve serve`` command, set up by its environment alone, with a
data folder of its own that no other replica reads, so anything shared must go through the
database or the bucket. Speech and transcription go to a fake OpenAI-compatible server
(``OpenAIStubServer``, a vLLM-Omni stand-in that takes ``ref_audio``, so voices clone without
model weights); the replicas start together on an empty database: the migrations run once,
under their lock.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from mistralai.client import Mistral

from tests.support.audio_samples import tone_wav
from tests.support.live_server import free_port
from tests.support.openai_stub_server import OpenAIStubServer
from tests.support.postgres import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
)
from tests.support.s3_emulator import S3Emulator, s3_emulator
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import BlobSettings, Settings

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3
VOICE_LIMIT = 20
START_TIMEOUT_S = 120
STT_MODEL = "fake-whisper"
TRANSCRIPT = f"Transcribed by {STT_MODEL}."
"""What the fake server answers for any audio sent with that model."""


@dataclass(frozen=True)
class Cluster:
    urls: list[str]
    keys: dict[str, str]
    """API key by owner name."""
    remote: OpenAIStubServer
    """The fake speech and transcription server every replica forwards to."""

    def mistral(self, replica: int, owner: str = "alice") -> Mistral:
        return Mistral(api_key=self.keys[owner], server_url=self.urls[replica])

    def http(self, replica: int, owner: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[owner]}"}
        return httpx.Client(base_url=self.urls[replica], headers=headers, timeout=60)


def replica_env(base: dict[str, str], root: Path, port: int) -> dict[str, str]:
    return {
        **base,
        "VOXSERVE_DATA_DIR": str(root / "data"),
        "VOXSERVE_MODELS_DIR": str(root / "models"),  # empty: no local models to find
        "VOXSERVE_HOST": "127.0.0.1",
        "VOXSERVE_PORT": str(port),
        "PYTHONPATH": str(ROOT / "src"),
    }


def shared_env(database_url: str, s3: S3Emulator, remote: OpenAIStubServer) -> dict[str, str]:
    """What every replica is told: the one database, the one bucket, the remote engines, the
    limits."""
    outside = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    return {
        **outside,
        **s3.client_env(),
        "VOXSERVE_DATABASE_URL": database_url,
        "VOXSERVE_BLOBS__URL": f"s3://voxserve/replicas-{uuid.uuid4().hex[:8]}",
        "VOXSERVE_BLOBS__ENDPOINT_URL": s3.endpoint_url,
        "VOXSERVE_REMOTE__TTS_URL": remote.base_url,
        "VOXSERVE_REMOTE__TTS_CLONING": "true",
        "VOXSERVE_REMOTE__STT_URL": remote.base_url,
        "VOXSERVE_REMOTE__STT_MODEL": STT_MODEL,
        "VOXSERVE_ENGINES__DEFAULT_TTS": "remote-tts",
        "VOXSERVE_ENGINES__DEFAULT_STT": "remote-stt",
        "VOXSERVE_LIMITS__MAX_CUSTOM_VOICES": str(VOICE_LIMIT),
    }


def serve_command() -> list[str]:
    """The installed ``voxserve`` console script of this interpreter's environment (its
    ``python -m`` form where the package is not installed)."""
    script = shutil.which("voxserve", path=str(Path(sys.executable).parent))
    return [script, "serve"] if script else [sys.executable, "-m", "voxserve.cli.main", "serve"]


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"replica at {url} exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"replica at {url} was not ready in {START_TIMEOUT_S} s")


def start_replicas(env: dict[str, str], root: Path, stack: ExitStack) -> list[str]:
    """Start every replica at once, then wait for each to be ready."""
    started = []
    for n in range(REPLICAS):
        port = free_port()
        log = root / f"replica-{n}.log"
        with log.open("wb") as output:  # a file, not a pipe nobody reads that could fill up
            process = subprocess.Popen(
                serve_command(),
                env=replica_env(env, root / f"replica-{n}", port),
                cwd=root,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        stack.callback(_stop, process)
        started.append((f"http://127.0.0.1:{port}", process, log))
    for url, process, log in started:
        wait_ready(url, process, log)
    return [url for url, _, _ in started]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def make_keys(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    """Keys made by a fourth process on the same storage (as ``voxserve keys create`` would)."""
    settings = Settings(
        data_dir=data_dir,
        database_url=env["VOXSERVE_DATABASE_URL"],
        blobs=BlobSettings(
            url=env["VOXSERVE_BLOBS__URL"], endpoint_url=env["VOXSERVE_BLOBS__ENDPOINT_URL"]
        ),
    )
    async with open_services(settings, engines=[FakeTTSEngine(), FakeSTTEngine()]) as services:
        made = {
            "alice": await services.auth.create_key("alice"),
            "crowd": await services.auth.create_key("crowd"),
            "paid": await services.auth.create_key("paid", credits=100),
        }
    return {name: key.secret for name, key in made.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
        except PostgresUnavailable as reason:
            pytest.skip(str(reason))
        database_url = asyncio.run(create_database(server))
        stack.callback(lambda: asyncio.run(drop_database(server, database_url)))
        s3 = stack.enter_context(s3_emulator())
        s3.create_bucket("voxserve")
        remote = stack.enter_context(OpenAIStubServer(voices=["alice"]))
        env = shared_env(database_url, s3, remote)
        urls = start_replicas(env, root, stack)
        keys = asyncio.run(make_keys(env, root / "admin"))
        yield Cluster(urls, keys, remote)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_voice_created_on_a_speaks_on_b(cluster: Cluster) -> None:
    voice = cluster.mistral(0).audio.voices.create(
        name="shared", sample_audio=b64(tone_wav(3.0)), sample_filename="in.wav"
    )

    spoken = cluster.mistral(1).audio.speech.complete(
        input="Hello from another replica.", voice_id=voice.id, response_format="wav"
    )
    sample = cluster.mistral(2).audio.voices.get_sample_audio(voice_id=voice.id)

    sent = cluster.remote.last("/v1/audio/speech").json
    assert base64.b64decode(spoken.audio_data)[:4] == b"RIFF"
    assert sent["input"] == "Hello from another replica."
    assert base64.b64decode(sent["ref_audio"].split(",", 1)[1])[:4] == b"RIFF"  # the voice state
    assert sample.read()[:4] == b"RIFF"
    assert [v.id for v in cluster.mistral(2).audio.voices.list(type_="custom").items] == [voice.id]


def test_a_file_uploaded_on_b_is_transcribed_on_c_and_served_by_a(cluster: Cluster) -> None:
    audio = tone_wav(3.2)
    uploaded = cluster.mistral(1).files.upload(
        file={"file_name": "in.wav", "content": audio}, purpose="audio"
    )

    result = cluster.mistral(2).audio.transcriptions.complete(
        model="voxtral-mini-latest", file_id=uploaded.id
    )
    signed = cluster.mistral(2).files.get_signed_url(file_id=uploaded.id, expiry=1)
    on_a = urlunsplit(urlsplit(cluster.urls[0])[:2] + urlsplit(signed.url)[2:])
    served = httpx.get(on_a, timeout=30)  # no key: the signature is the access

    assert result.text.strip() == TRANSCRIPT
    assert signed.url.startswith(cluster.urls[2])
    assert served.status_code == 200, served.text
    assert served.content == audio


def test_50_concurrent_voice_creates_stop_exactly_at_the_limit(cluster: Cluster) -> None:
    body = {"sample_audio": b64(tone_wav(2.5)), "sample_filename": "in.wav"}
    clients = [cluster.http(n, "crowd") for n in range(REPLICAS)]

    def create(n: int) -> int:
        response = clients[n % REPLICAS].post("/v1/audio/voices", json={**body, "name": f"v{n}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(create, range(50)))
    listed = clients[0].get("/v1/audio/voices", params={"type": "custom", "limit": 100}).json()
    for client in clients:
        client.close()

    assert sorted(set(statuses)) == [200, 400], statuses
    assert statuses.count(200) == VOICE_LIMIT
    assert listed["total"] == VOICE_LIMIT


def test_credits_never_go_negative_across_replicas(cluster: Cluster) -> None:
    clients = [cluster.http(n, "paid") for n in range(REPLICAS)]
    body = {"input": "Ten chars.", "voice_id": "remote-tts:alice", "response_format": "wav"}

    def speak(n: int) -> int:
        return clients[n % REPLICAS].post("/api/tts/generate", json=body).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(speak, range(24)))
    report = clients[1].get("/v1/usage").json()
    for client in clients:
        client.close()

    assert statuses.count(200) == 10, statuses  # 100 credits, 10 each
    assert statuses.count(402) == 14
    assert report["balance"] == 0
    assert report["totals"]["credits"] == 100
