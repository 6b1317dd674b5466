"""Fixtures for the models tests: the real test-models folder, and a loopback hub double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import FETCH_HINT, models_root
from tests.unit.models.hub_double import HubDouble


@pytest.fixture
def test_models() -> Path:
    """The folder the test-models fetcher filled (``tests.support.models``)."""
    path = models_root()
    if not path.is_dir():
        pytest.skip(f"{path} is not a folder ({FETCH_HINT}, or set VOXSERVE_TEST_MODELS)")
    return path


@pytest.fixture
def hub() -> Iterator[HubDouble]:
    with HubDouble() as double:
        yield double


@pytest.fixture(autouse=True)
def _no_hub_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's hub URL and token out of these tests."""
    for name in ("VOXSERVE_HUB_URL", "HF_ENDPOINT", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resume at once: the hub double needs no time to recover."""
    monkeypatch.setattr("voxserve.models.pull.RETRY_DELAY_SECONDS", 0.0)
