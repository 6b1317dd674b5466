"""``voxserve migrate-storage`` and secrets: the target database may come from an environment
variable (keeping its password out of the process list), and a target that already has its own
URL-signing key keeps it, but says so (URLs the source signed are not accepted there)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from voxserve.cli.main import app as cli
from voxserve.cli.storage import TARGET_DATABASE_VARIABLE
from voxserve.storage.secrets import signing_key
from voxserve.storage.sql import open_storage


async def key_of(database: Path, legacy_dir: Path) -> bytes:
    async with open_storage(f"sqlite+aiosqlite:///{database}", database.parent / "blobs") as store:
        return await signing_key(store.secrets, None, legacy_dir)


def migrate(data: Path, target: Path, *arguments: str) -> tuple[int, str]:
    env = {
        "VOXSERVE_DATA_DIR": str(data),
        TARGET_DATABASE_VARIABLE: f"sqlite+aiosqlite:///{target}",
    }
    result = CliRunner().invoke(cli, ["migrate-storage", *arguments], env=env)
    return result.exit_code, result.output


def test_a_target_with_its_own_signing_key_keeps_it_and_says_so(tmp_path: Path) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    source_key = asyncio.run(key_of(data / "voxserve.db", data))
    target_key = asyncio.run(key_of(tmp_path / "target.db", elsewhere))
    assert source_key != target_key

    code, output = migrate(data, tmp_path / "target.db", "--resume")

    assert code == 0, output
    assert "keeps it" in output and "url-signing-key" in output
    assert asyncio.run(key_of(tmp_path / "target.db", elsewhere)) == target_key


def test_a_fresh_target_gets_the_source_key_without_a_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    source_key = asyncio.run(key_of(data / "voxserve.db", data))

    code, output = migrate(data, tmp_path / "target.db")

    assert code == 0, output
    assert "verified" in output and "warning" not in output
    assert asyncio.run(key_of(tmp_path / "target.db", tmp_path / "elsewhere")) == source_key
