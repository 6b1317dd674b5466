"""Configuration: settings from a TOML file (the environment overrides it, key by key), unknown
variables and file keys reported with the closest valid name, a bad value as one line naming
the setting with exit code 2, and docs/settings.md as generated from the docstrings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from voxserve.api.app import create_app
from voxserve.cli.main import app as cli
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings
from voxserve.settings_docs import render, undocumented
from voxserve.storage.memory import create_memory_storage

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
port = 9001
[engines]
default_tts = "piper"
max_queue = 3
concurrency = { piper = 2 }
[engine]
default_tts = "espeak"
[limits]
max_custom_voice = 5
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("VOXSERVE_CONFIG", "VOXSERVE_PORT", "VOXSERVE_ENGINES__MAX_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "voxserve.toml"
    path.write_text(CONFIG)
    return path


def test_the_file_gives_settings_and_the_environment_overrides_it_key_by_key(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_CONFIG", str(config))
    monkeypatch.setenv("VOXSERVE_ENGINES__MAX_QUEUE", "7")
    settings = Settings()
    assert settings.config == config and settings.port == 9001
    assert settings.engines.default_tts == "piper"  # the file's, beside the variable's
    assert settings.engines.max_queue == 7
    assert settings.engines.concurrency == {"piper": 2}
    assert Settings(port=9100).port == 9100  # arguments (the CLI's options) win over both


def test_an_explicit_file_and_no_file(config: Path) -> None:
    assert Settings(config=config).engines.max_queue == 3
    assert Settings().config is None and Settings().port == 8000


def test_unknown_variables_and_keys_are_reported_with_the_closest_name(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {
        "VOXSERVE_ENGINE__DEFAULT_TTS": "piper",  # the typo the issue names
        "VOXSERVE_PROT": "1",
        "VOXSERVE_ENGINES__CONCURRENCY": '{"piper": 2}',
        "VOXSERVE_CONFIG": str(config),
        "VOXSERVE_TEST_MODELS": "/models",  # the test suite's, not a setting
        "HOME": "/root",
    }
    warnings = Settings(config=config).config_warnings(environ)
    assert warnings == [
        "unknown setting VOXSERVE_ENGINE__DEFAULT_TTS (ignored); "
        "did you mean VOXSERVE_ENGINES__DEFAULT_TTS?",
        "unknown setting VOXSERVE_PROT (ignored); did you mean VOXSERVE_PORT?",
        f"unknown key engine in {config} (ignored); did you mean engines?",
        f"unknown key limits.max_custom_voice in {config} (ignored); "
        "did you mean limits.max_custom_voices?",
    ]


def test_the_server_logs_them_at_startup(
    config: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VOXSERVE_ENGINE__DEFAULT_TTS", "piper")
    settings = Settings(config=config, data_dir=config.parent / "data")
    app = create_app(settings, engines=[FakeTTSEngine()], storage=create_memory_storage())
    with caplog.at_level(logging.WARNING), TestClient(app, base_url="http://127.0.0.1"):
        pass
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("VOXSERVE_ENGINE__DEFAULT_TTS" in m and "VOXSERVE_ENGINES__" in m for m in logged)
    assert any("limits.max_custom_voice " in m for m in logged)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"VOXSERVE_PORT": "70000"},
            "error: invalid setting port (VOXSERVE_PORT): Input should be less than or equal "
            "to 65535 (got '70000')",
        ),
        (
            {"VOXSERVE_ENGINES__MAX_QUEUE": "many"},
            "error: invalid setting engines.max_queue (VOXSERVE_ENGINES__MAX_QUEUE): Input "
            "should be a valid integer, unable to parse string as an integer (got 'many')",
        ),
        (
            {"VOXSERVE_LIMITS__SAMPLE_MIN_SECONDS": "40"},
            "error: invalid settings: limits.sample_min_seconds must be below "
            "limits.sample_max_seconds",
        ),
        ({"VOXSERVE_CONFIG": "/no/such.toml"}, "error: config file /no/such.toml: no such file"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_code_2(
    config: Path, env: dict[str, str], line: str
) -> None:
    result = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert result.exit_code == 2
    assert result.output.strip() == line
    assert "Traceback" not in result.output


def test_serve_reads_config_and_refuses_a_broken_one(tmp_path: Path, config: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(broken)])
    assert result.exit_code == 2
    assert (
        result.output.strip() == f"error: config file {broken}: Invalid value (at line 1, column 8)"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[engines]\nmax_queue = -1\n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(bad)])
    assert result.exit_code == 2
    assert "engines.max_queue (VOXSERVE_ENGINES__MAX_QUEUE)" in result.output


def test_docs_settings_md_is_generated_from_the_docstrings() -> None:
    assert undocumented() == []
    committed = (ROOT / "docs" / "settings.md").read_text()
    assert committed == render(), "docs/settings.md is stale: run scripts/settings_docs"
    for name in ("VOXSERVE_ENGINES__DEFAULT_TTS", "VOXSERVE_METRICS__ENABLED"):
        assert f"`{name}`" in committed


@pytest.mark.parametrize(
    "env",
    [
        {"VOXSERVE_REMOTE__STT_URL": "[not json, token s3cr3t-value"},
        {"VOXSERVE_PORT": "s3cr3t-value"},
    ],
)
def test_a_bad_value_that_may_hold_a_credential_is_not_echoed(
    config: Path, env: dict[str, str]
) -> None:
    result = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert result.exit_code == 2
    assert "invalid setting" in result.output
    shown = "s3cr3t-value" in result.output
    assert shown == ("VOXSERVE_PORT" in env)  # a port is echoed; a URL or key never is
