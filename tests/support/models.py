"""The real test models folder: ``VOXSERVE_TEST_MODELS``, else the folder the test-models fetcher
fills by default (``~/.cache/voxserve-test-models``). The fetcher is ``../shared/test-models/fetch``
next to the checkout; it prints the folder on its last line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCHER = REPO_ROOT.parent / "shared" / "test-models" / "fetch"
"""``../shared/test-models/fetch`` relative to the checkout."""
DEFAULT_TEST_MODELS = Path.home() / ".cache" / "voxserve-test-models"
"""Where the fetcher puts the models when given no folder and no ``VOXSERVE_TEST_MODELS``."""
FETCH_HINT = "run ../shared/test-models/fetch from the checkout"


def models_root() -> Path:
    """``VOXSERVE_TEST_MODELS``, else the fetcher's default folder (which may not exist)."""
    value = os.environ.get("VOXSERVE_TEST_MODELS")
    return Path(value) if value else DEFAULT_TEST_MODELS


def models_dir() -> Path:
    """The folder, or skip the test with the reason."""
    path = models_root()
    if not (path / "faster-whisper-base").is_dir():
        pytest.skip(f"{path} holds no test models ({FETCH_HINT}, or set VOXSERVE_TEST_MODELS)")
    return path
