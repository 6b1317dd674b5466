"""The in-memory storage plugged into the composition root: the services and a live server run on
it, through the official SDK, without a database file and so without migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai

from tests.support.live_server import run_server
from voxserve.bootstrap import open_services
from voxserve.core.auth import hash_key
from voxserve.engines.registry import Engine
from voxserve.settings import Settings
from voxserve.storage.protocol import Storage


def database_file(settings: Settings) -> Path:
    return settings.data_dir / "voxserve.db"


async def test_services_run_on_the_given_storage_without_a_database(
    settings: Settings, memory_storage: Storage, fake_engines: list[Engine]
) -> None:
    async with open_services(settings, engines=fake_engines, storage=memory_storage) as services:
        new = await services.auth.create_key("alice", credits=5)

    found = await memory_storage.keys.find_by_hash(hash_key(new.secret))
    assert found is not None and found[1].credits == 5
    assert not database_file(settings).exists()


def test_a_live_server_on_the_memory_storage_answers_the_sdk(
    settings: Settings, memory_storage: Storage, fake_engines: list[Engine]
) -> None:
    with run_server(settings, fake_engines, storage=memory_storage) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused-on-keyless-loopback")
        speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.")
        assert speech.content

    # The server's usage went to the storage the test handed it, not to a database.
    records = asyncio.run(memory_storage.usage.records("local"))
    assert [(r.endpoint, r.status) for r in records] == [("speech", 200)]
    assert not database_file(settings).exists()
