"""The composition root takes its adapters: given engines and a ready storage, it uses them."""

from __future__ import annotations

from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings
from voxserve.storage.sql import open_storage


async def test_a_given_storage_is_used_and_left_open(settings: Settings) -> None:
    url = f"sqlite+aiosqlite:///{settings.data_dir.parent / 'given.db'}"
    async with open_storage(url, settings.data_dir.parent / "blobs") as storage:
        engines = [FakeTTSEngine(), FakeSTTEngine()]
        async with open_services(settings, engines=engines, storage=storage) as services:
            assert services.storage is storage
            owner = await services.storage.keys.get_or_create_owner("o1", "o1")
        assert not (settings.data_dir / "voxserve.db").exists()  # the configured one: unopened
        assert await storage.keys.get_owner(owner.id) is not None  # still open


async def test_services_share_one_engine_choice(settings: Settings) -> None:
    async with open_services(settings, engines=[FakeTTSEngine(), FakeSTTEngine()]) as services:
        assert services.choice.default_name("tts") == "fake-tts"
        assert services.speech.default_engine().name == "fake-tts"
        models = {m.id: m for m in services.models.models()}
        assert models["fake-stt"].default and not models["fake-stt"].translation
