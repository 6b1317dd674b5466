"""Fixtures for the models tests: the real test-models folder, a loopback fake hub, and an
empty Hugging Face cache of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import FETCH_HINT, models_root
from tests.unit.models.fake_hub import FakeHub
from voxserve.models.pull import HubOptions


@pytest.fixture
def test_models() -> Path:
    """The folder the test-models fetcher filled (``tests.support.models``)."""
    path = models_root()
    if not path.is_dir():
        pytest.skip(f"{path} is not a folder ({FETCH_HINT}, or set VOXSERVE_TEST_MODELS)")
    return path


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def hf_cache(tmp_path: Path) -> Path:
    """A Hugging Face cache folder of this test's own (never the developer's)."""
    return tmp_path / "hf-cache"


@pytest.fixture
def options(hub: FakeHub, hf_cache: Path) -> HubOptions:
    return HubOptions(hub_url=hub.url, cache_dir=hf_cache)


@pytest.fixture(autouse=True)
def _no_hub_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's hub URL, token, login and cache out of these tests."""
    for name in ("VOXSERVE_HUB_URL", "HF_ENDPOINT", "HF_TOKEN", "VOXSERVE_PULL_RECOMMENDED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture(autouse=True)
def _small_download_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client hands out 10 MB chunks; small ones make a drop half-way through a 3 MB test
    file resumable (bytes received but never handed out are fetched again)."""
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 64 * 1024)
