"""Downloading a catalogue entry from a model hub into the models folder.

Only the CLI calls this (``voxserve models pull``): the server never downloads while serving.

Every file is fetched from ``{hub}/{repo}/resolve/{revision}/{path}`` into ``<dest>.part``, checked
(sha256 and size) and then renamed into place, so the engines never see half a file. A ``.part``
left by an interrupted run is resumed with a ``Range`` request; a drop in the middle of a file is
retried (resuming) a few times before giving up. Errors::

    VoxError
    ├── InvalidRequest     the hub refused us (401/403): a gated model needs HF_TOKEN
    ├── NotFound           the file is not on the hub at that revision (404)
    └── EngineFailure
        └── DownloadFailed       network trouble or a bad answer; run again to resume
            └── ChecksumMismatch the bytes are not the expected ones (the .part is deleted)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import httpx

from voxserve.errors import EngineFailure, InvalidRequest, NotFound
from voxserve.models.catalog import BundledFile, CatalogEntry, RemoteFile
from voxserve.models.layout import PART_SUFFIX, InstalledModel, find_installed
from voxserve.offload import run_in_thread

log = logging.getLogger(__name__)

DEFAULT_HUB_URL = "https://huggingface.co"
ProgressCallback = Callable[[str, int, int | None], None]
"""``on_progress(dest, done_bytes, total_bytes)`` for the file being fetched: ``dest`` is its path
relative to the models folder, ``done_bytes`` grows monotonically (it starts at what a resumed
``.part`` already holds) and ``total_bytes`` is None while the size is unknown."""

HASH_BLOCK_BYTES = 8 << 20
RETRY_DELAY_SECONDS = 1.0
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadFailed(EngineFailure):
    """A file could not be fetched; what was received is kept for the next try."""

    code = "download_failed"


class ChecksumMismatch(DownloadFailed):
    """A fetched file is not the expected one; it has been deleted."""

    code = "checksum_mismatch"


def hub_url_from_env() -> str:
    """``VOXSERVE_HUB_URL``, else ``HF_ENDPOINT`` (the hub client's variable), else the hub."""
    return os.environ.get("VOXSERVE_HUB_URL") or os.environ.get("HF_ENDPOINT") or DEFAULT_HUB_URL


def token_from_env() -> str | None:
    """The hub access token from ``HF_TOKEN``, if set."""
    return os.environ.get("HF_TOKEN") or None


async def pull(
    entry: CatalogEntry,
    models_dir: Path,
    *,
    hub_url: str | None = None,
    token: str | None = None,
    on_progress: ProgressCallback | None = None,
    client: httpx.AsyncClient | None = None,
    retries: int = 3,
    force: bool = False,
) -> InstalledModel:
    """Fetch every file of ``entry`` into ``models_dir``; files already in place are kept.

    Args:
        entry: what to fetch (see :data:`voxserve.models.catalog.KNOWN_MODELS`).
        models_dir: the models folder; created when missing.
        hub_url: the hub's base URL; default :func:`hub_url_from_env`.
        token: hub access token sent as a bearer token; default :func:`token_from_env`.
        on_progress: called as bytes arrive, see :data:`ProgressCallback`.
        client: an ``httpx.AsyncClient`` to use (it is not closed); default a new one.
        retries: how many times a dropped transfer is resumed before giving up.
        force: fetch every file afresh, even one already in place or partly downloaded.

    Returns:
        The installed model as :func:`voxserve.models.layout.scan` sees it.

    Raises:
        InvalidRequest: the hub refused access (a gated model: accept its terms, set HF_TOKEN).
        NotFound: a file is missing on the hub.
        DownloadFailed: the transfer kept failing; running again resumes it.
        ChecksumMismatch: a file's sha256 or size is wrong; its partial download is deleted.
    """
    fetcher = _Fetcher(
        hub=(hub_url or hub_url_from_env()).rstrip("/"),
        token=token if token is not None else token_from_env(),
        on_progress=on_progress,
        retries=retries,
        force=force,
    )
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=120.0))
    try:
        for remote in entry.files:
            await fetcher.fetch(http, entry, remote, models_dir / remote.dest)
    finally:
        if own_client:
            await http.aclose()
    for bundled in entry.bundled:
        await run_in_thread(_write_bundled, bundled, models_dir / bundled.dest)
    installed = find_installed(models_dir, entry.name)
    if installed is None:
        raise EngineFailure(f"{entry.name} was downloaded but is not laid out as a model.")
    return installed


def partial_downloads(entry: CatalogEntry, models_dir: Path) -> list[Path]:
    """The ``.part`` files an interrupted pull of ``entry`` left behind (to report or delete)."""
    parts = (models_dir / (remote.dest + PART_SUFFIX) for remote in entry.files)
    return [part for part in parts if part.is_file()]


@dataclass(frozen=True)
class _Expected:
    """What a finished file must be (from the catalogue, else from the hub's headers), and the
    hash of what was received."""

    size: int | None
    sha256: str | None
    hasher: hashlib._Hash


@dataclass
class _Fetcher:
    hub: str
    token: str | None
    on_progress: ProgressCallback | None
    retries: int
    force: bool

    async def fetch(
        self, http: httpx.AsyncClient, entry: CatalogEntry, remote: RemoteFile, dest: Path
    ) -> None:
        kept = await run_in_thread(_prepare, dest, remote, self.force)
        if kept is not None:
            self._report(remote.dest, kept, kept)
            return
        url = _file_url(self.hub, entry, remote)
        for attempt in range(self.retries + 1):
            try:
                await self._fetch_once(http, url, remote, dest)
                return
            except DownloadFailed as exc:
                if isinstance(exc, ChecksumMismatch) or attempt == self.retries:
                    raise
                log.warning("%s; resuming (try %d)", exc.message, attempt + 2)
                await asyncio.sleep(RETRY_DELAY_SECONDS * (attempt + 1))

    async def _fetch_once(
        self, http: httpx.AsyncClient, url: str, remote: RemoteFile, dest: Path
    ) -> None:
        part = dest.with_name(dest.name + PART_SUFFIX)
        offset, hasher = await run_in_thread(_resume_point, part)
        try:
            expected = await self._download(http, url, remote, part, offset, hasher)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"{remote.dest}: {type(exc).__name__}: {exc}") from exc
        if expected is None:
            # 416: the .part is as long as the file or longer, so not a prefix of it: start over.
            part.unlink()
            return await self._fetch_once(http, url, remote, dest)
        _finish(part, dest, expected, remote.dest)

    async def _download(
        self,
        http: httpx.AsyncClient,
        url: str,
        remote: RemoteFile,
        part: Path,
        offset: int,
        hasher: hashlib._Hash,
    ) -> _Expected | None:
        """Write the answer into ``part``; None when the hub cannot serve from ``offset``."""
        headers = self._headers(offset)
        async with http.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code == 416 and offset:
                return None
            _raise_for_status(response, remote)
            start, expected = _plan(response, remote, offset, hasher)
            with _PartFile(part, start) as out:
                await self._receive(response, out, expected.hasher, remote.dest, expected.size)
        return expected

    async def _receive(
        self,
        response: httpx.Response,
        out: _PartFile,
        hasher: hashlib._Hash,
        label: str,
        total: int | None,
    ) -> None:
        self._report(label, out.written, total)
        # Chunks as they arrive (no re-chunking): bytes httpx buffered but never handed out
        # would be lost when the connection drops, and resuming wants every byte received.
        async for chunk in response.aiter_raw():
            out.write(chunk)
            hasher.update(chunk)
            self._report(label, out.written, total)

    def _headers(self, offset: int) -> dict[str, str]:
        # identity: the bytes on disk must be the file's bytes, and ranges must count them.
        headers = {"Accept-Encoding": "identity"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if offset:
            headers["Range"] = f"bytes={offset}-"
        return headers

    def _report(self, label: str, done: int, total: int | None) -> None:
        if self.on_progress is not None:
            self.on_progress(label, done, total)


class _PartFile:
    """The ``.part`` being written: appended to from ``start`` (truncated there first)."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.written = start
        self._file: BinaryIO | None = None

    def __enter__(self) -> _PartFile:
        self._file = open(self.path, "r+b" if self.written else "wb")
        self._file.seek(self.written)
        self._file.truncate()
        return self

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.written += len(chunk)

    def __exit__(self, *exc: object) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def _file_url(hub: str, entry: CatalogEntry, remote: RemoteFile) -> str:
    repo = remote.repo or entry.repo
    revision = quote(remote.revision or entry.revision, safe="")
    return f"{hub}/{repo}/resolve/{revision}/{quote(remote.path_in_repo)}"


def _raise_for_status(response: httpx.Response, remote: RemoteFile) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    where = f"{remote.path_in_repo} ({response.url.host})"
    if status in (401, 403):
        raise InvalidRequest(
            f"The hub refused {where} (HTTP {status}). A gated model needs its terms accepted "
            "on the hub and HF_TOKEN set to an access token of that account; a private or "
            "missing repository answers the same."
        )
    if status == 404:
        raise NotFound(f"{where} is not on the hub (HTTP 404).")
    raise DownloadFailed(f"{remote.dest}: the hub answered HTTP {status}")


def _plan(
    response: httpx.Response, remote: RemoteFile, offset: int, hasher: hashlib._Hash
) -> tuple[int, _Expected]:
    """Where the body starts in the file, and what the finished file must be; ``hasher`` holds
    the hash of the first ``offset`` bytes, kept only when the hub resumes there."""
    start, total = 0, _int_header(response, "content-length")
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        if match is None or int(match.group(1)) != offset:
            raise DownloadFailed(f"{remote.dest}: the hub sent another range than asked")
        start = offset
        total = int(match.group(3)) if match.group(3) != "*" else None
    total = total or _int_header(response, "x-linked-size")
    expected = _Expected(
        size=remote.size if remote.size is not None else total,
        sha256=remote.sha256 or _hub_sha256(response),
        hasher=hasher if start else hashlib.sha256(),
    )
    return start, expected


def _hub_sha256(response: httpx.Response) -> str | None:
    """The sha256 the hub reports for an LFS file: ``X-Linked-Etag`` (on the redirect to the
    CDN, or the answer itself), else an ``ETag`` that is a sha256 (not a git blob id)."""
    for answer in (*response.history, response):
        for header in ("x-linked-etag", "etag"):
            value = answer.headers.get(header, "").removeprefix("W/").strip('"').lower()
            if _SHA256.fullmatch(value):
                return value
    return None


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if value.isdigit() else None


def _finish(part: Path, dest: Path, expected: _Expected, label: str) -> None:
    size = part.stat().st_size
    if expected.size is not None and size < expected.size:
        # A body that just stopped early: keep it, the next try resumes it.
        raise DownloadFailed(f"{label}: the transfer ended at {size} of {expected.size} bytes")
    digest = expected.hasher.hexdigest()
    problem = None
    if expected.size is not None and size != expected.size:
        problem = f"{size} bytes instead of {expected.size}"
    elif expected.sha256 is not None and digest != expected.sha256:
        problem = f"sha256 {digest} instead of {expected.sha256}"
    if problem is not None:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{label}: {problem}; the download was deleted, pull again.")
    if expected.sha256 is None:
        log.info("%s: no sha256 known to check; size %d bytes, sha256 %s", label, size, digest)
    os.replace(part, dest)


def _write_bundled(bundled: BundledFile, dest: Path) -> None:
    """Write a file that ships with voxserve, atomically (the engines never see half of it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    part.write_bytes(bundled.read())
    os.replace(part, dest)


def _prepare(dest: Path, remote: RemoteFile, force: bool) -> int | None:
    """The size of ``dest`` when it is already in place, else None (after making its folder).

    A finished file is kept when it matches what the catalogue knows of it (a size, a sha256);
    ``force`` discards it and any partial download instead.
    """
    part = dest.with_name(dest.name + PART_SUFFIX)
    if force:
        part.unlink(missing_ok=True)
    elif dest.is_file() and _matches(dest, remote):
        return dest.stat().st_size
    dest.parent.mkdir(parents=True, exist_ok=True)
    return None


def _matches(path: Path, remote: RemoteFile) -> bool:
    if remote.size is not None and path.stat().st_size != remote.size:
        return False
    return remote.sha256 is None or _hash_file(path).hexdigest() == remote.sha256


def _resume_point(part: Path) -> tuple[int, hashlib._Hash]:
    """How much of the file a ``.part`` holds, with the hash of those bytes."""
    if not part.is_file():
        return 0, hashlib.sha256()
    return part.stat().st_size, _hash_file(part)


def _hash_file(path: Path) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(HASH_BLOCK_BYTES):
            hasher.update(block)
    return hasher
