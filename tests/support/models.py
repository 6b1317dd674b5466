"""The real test models folder (``VOXSERVE_TEST_MODELS``, made by ../shared/test-models/fetch)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def models_dir() -> Path:
    """The folder, or skip the test with the reason."""
    value = os.environ.get("VOXSERVE_TEST_MODELS")
    if not value:
        pytest.skip("VOXSERVE_TEST_MODELS is not set (run ../shared/test-models/fetch)")
    path = Path(value)
    if not (path / "faster-whisper-base").is_dir():
        pytest.skip(f"{path} holds no test models (run ../shared/test-models/fetch {path})")
    return path
