"""``voxserve models pull`` end to end through the CLI, against the loopback fake hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.models.fake_hub import FakeHub
from voxserve.cli.models import app
from voxserve.models.catalog import find
from voxserve.models.layout import scan

NAME = "piper-en_US-amy-medium"
"""A catalogue voice with no checksums known: any stand-in bytes are accepted."""


def test_pull_then_pull_offline_elsewhere_from_the_cache(
    hub: FakeHub, tmp_path: Path, test_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = find(NAME)
    assert entry is not None and all(f.sha256 is None for f in entry.files)
    onnx, config = entry.files
    hub.add(entry.repo, entry.revision, onnx.path_in_repo, b"stand-in weights", lfs=True)
    voice_config = (test_models / "piper" / "en_US-joe-medium.onnx.json").read_bytes()
    hub.add(entry.repo, entry.revision, config.path_in_repo, voice_config)
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("VOXSERVE_HUB_URL", hub.url)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))

    result = CliRunner().invoke(app, ["pull", NAME])
    assert result.exit_code == 0, result.output
    assert f"installed {NAME}" in result.output
    assert [m.name for m in scan(tmp_path / "a")] == [NAME]

    answered = len(hub.requests)
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(tmp_path / "b"))
    result = CliRunner().invoke(app, ["pull", NAME, "--offline"])
    assert result.exit_code == 0, result.output
    assert [m.name for m in scan(tmp_path / "b")] == [NAME]
    assert len(hub.requests) == answered


def test_pull_of_an_unknown_model_or_a_missing_file_fails_in_one_line(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("VOXSERVE_HUB_URL", hub.url)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))

    unknown = CliRunner().invoke(app, ["pull", "no-such-model"])
    assert unknown.exit_code == 1
    assert "unknown model 'no-such-model'" in unknown.output

    missing = CliRunner().invoke(app, ["pull", NAME])
    assert missing.exit_code == 1
    assert "is not on the hub (HTTP 404)" in missing.output
    assert scan(tmp_path / "m") == []
