"""``voxserve serve`` (and ``worker``) when it cannot start: one clear line and a non-zero exit,
never a traceback or a silent exit 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import typer
from fastapi import FastAPI
from typer.testing import CliRunner

from tests.support.cli import invoke_keeping_logging
from tests.support.live_server import free_port
from voxserve.api.health import Draining
from voxserve.api.server import STARTUP_FAILURE, serve
from voxserve.cli.worker import worker
from voxserve.settings import Settings


def test_a_database_that_cannot_be_reached_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path))
    url = f"postgresql+asyncpg://voxserve@127.0.0.1:{free_port()}/voxserve"
    monkeypatch.setenv("VOXSERVE_DATABASE_URL", url)
    result = invoke_keeping_logging(["serve", "--port", "0"])

    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: cannot reach the database (VOXSERVE_DATABASE_URL)")


def test_a_public_bind_without_keys_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path))
    result = invoke_keeping_logging(["serve", "--host", "0.0.0.0", "--port", "0"])

    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output  # the new database's migrations log before it
    assert errors[0].startswith("error: Refusing to listen on 0.0.0.0 without API keys")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("alone", [False, True], ids=["voxserve", "worker-command-alone"])
def test_a_bad_setting_stops_the_worker_in_one_line(
    alone: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``voxserve`` (whose callback checks the settings first) and through the worker
    command on its own (so the worker itself reads them as ``serve`` does: ``load_settings``)."""
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXSERVE_ENGINES__IDLE_UNLOAD_SECONDS", "abc")
    only_the_worker = typer.Typer()
    only_the_worker.command()(worker)

    result = (
        CliRunner().invoke(only_the_worker, []) if alone else invoke_keeping_logging(["worker"])
    )

    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "error: invalid setting engines.idle_unload_seconds (VOXSERVE_ENGINES__IDLE_UNLOAD_SECONDS)"
    )


def test_a_failed_startup_exits_non_zero(tmp_path: Path) -> None:
    @asynccontextmanager
    async def failing(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("the services would not open")
        yield  # pragma: no cover

    app = FastAPI(lifespan=failing)
    app.state.draining = Draining()
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=free_port())

    with pytest.raises(SystemExit) as exited:
        serve(app, settings)

    assert exited.value.code == STARTUP_FAILURE
