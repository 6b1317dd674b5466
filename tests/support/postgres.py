"""A throwaway PostgreSQL server for tests, and one fresh database per test.

``postgres_server()`` yields a server URL: ``VOXSERVE_TEST_POSTGRES_URL`` when set (its role must
be allowed to create databases), else a temporary cluster made with ``initdb``/``pg_ctl`` in a temp
folder (listening on 127.0.0.1 on a free port, unix socket in the folder, fsync off), stopped and
removed at exit. initdb refuses to run as root, so as root the tools run as ``postgres`` through
``runuser``. ``PostgresUnavailable`` says why no server can be had (tests turn it into a skip).

Use from a conftest (see ``tests/storage/conftest.py``)::

    @pytest.fixture(scope="session")
    def postgres_server_url():
        with ExitStack() as stack:
            try:
                url = stack.enter_context(postgres_server())
            except PostgresUnavailable as reason:
                pytest.skip(str(reason))
            yield url

then ``await create_database(server_url)`` / ``await drop_database(server_url, url)`` per test.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

ENV_URL = "VOXSERVE_TEST_POSTGRES_URL"
START_TIMEOUT_S = 30
T = TypeVar("T")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be used; the message says why."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """A ``postgresql+asyncpg://`` URL of a server the tests may create databases on.

    Raises:
        PostgresUnavailable: no URL in the environment and no usable initdb/pg_ctl.
    """
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    with temporary_cluster() as url:
        yield url


@contextmanager
def temporary_cluster() -> Iterator[str]:
    """Start a private PostgreSQL cluster in a temp folder; stop and remove it on exit."""
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    prefix = _run_as_prefix()
    root = Path(tempfile.mkdtemp(prefix="voxserve-pg-"))
    try:
        if prefix:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        data = root / "data"
        _check(
            [
                *prefix,
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )
        port = _start(prefix, pg_ctl, data, root)
        try:
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def create_database(server_url: str, *, template: str | None = None) -> str:
    """Create a database with a unique name (empty, or a copy of ``template``); return its URL."""
    name = f"voxserve_test_{uuid.uuid4().hex[:12]}"
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    await _admin(server_url, sql, file_copy=True)
    return _render(make_url(server_url).set(database=name))


async def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by ``create_database``, closing any connection still open to it."""
    name = make_url(database_url).database
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def truncate_tables(database_url: str, tables: Iterable[str]) -> None:
    """Empty the tables (and reset their sequences): a cheap reset between tests that share
    one migrated database; creating a database per test costs a checkpoint each time."""
    names = ", ".join(f'"{table}"' for table in tables)
    dsn = _render(make_url(database_url).set(drivername="postgresql"))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


def run_blocking(awaitable: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code (e.g. a session fixture), on a
    private event loop in a worker thread so the test's own event loop is left alone."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, awaitable).result()


# ---------------------------------------------------------------- internals


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PostgresUnavailable(
            f"PostgreSQL tests need {ENV_URL} or '{name}' on PATH (install PostgreSQL server)"
        )
    return path


def _run_as_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        runuser = None
    if runuser is None:
        raise PostgresUnavailable(
            f"running as root: initdb needs 'runuser' and a 'postgres' user, or set {ENV_URL}"
        )
    return [runuser, "-u", "postgres", "--"]


def _start(prefix: list[str], pg_ctl: str, data: Path, root: Path) -> int:
    # The free port may be taken between the probe and the start: try a few.
    for attempt in range(3):
        port = _free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = root / f"server-{attempt}.log"
        done = subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return port
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else done.stderr
    raise RuntimeError(f"pg_ctl start failed:\n{tail}")


def _check(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def _admin(server_url: str, sql: str, *, file_copy: bool = False) -> None:
    dsn = _render(make_url(server_url).set(drivername="postgresql"))
    connection = await asyncpg.connect(dsn)
    try:
        if file_copy and connection.get_server_version().major >= 15:
            # Copying files is several times faster than the default WAL_LOG for small databases.
            sql += " STRATEGY FILE_COPY"
        await connection.execute(sql)
    finally:
        await connection.close()
