"""Pulling a catalogue entry from the Hugging Face hub into the models folder.

Only the CLI calls this (``voxserve models pull``, ``voxserve models recommend``): the server
never downloads while serving. The hub's own client, ``huggingface_hub``, does the transfer:

- each file is fetched with ``hf_hub_download`` into the client's cache (``HF_HOME`` /
  ``HF_HUB_CACHE``), so a model already there (pulled by any other tool) is not fetched again,
  and ``offline=True`` (or ``HF_HUB_OFFLINE=1``) uses the cache alone;
- its token (``HF_TOKEN``, or ``hf auth login``), its mirror setting (``HF_ENDPOINT``; voxserve's
  own ``VOXSERVE_HUB_URL`` wins), its resuming of a dropped transfer (``Range``) and its size
  check apply.

Then voxserve checks each file (the catalogue's sha256 and size where it knows them, else the
sha256 an LFS file is stored under in the cache, which is what the hub reported) and puts it
into the models folder layout: a hard link to the cache's copy (no second copy on disk, and
clearing the cache leaves the model working), or a copy where a link cannot be made (another
filesystem); either lands as ``<dest>.part`` and is renamed into place, so the engines (which
rescan the folder while serving) never see half a file. Errors::

    VoxError
    ├── InvalidRequest     the hub refused us (401/403): a gated model needs HF_TOKEN
    ├── NotFound           the file is not on the hub at that revision (404)
    └── EngineFailure
        └── DownloadFailed       network trouble, or offline and not in the cache; run again
            └── ChecksumMismatch the bytes are not the expected ones (the cached copy is deleted)
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import errors as hub_errors
from huggingface_hub.utils import tqdm

from voxserve.errors import EngineFailure, InvalidRequest, NotFound
from voxserve.models.catalog import BundledFile, CatalogEntry, RemoteFile
from voxserve.models.layout import PART_SUFFIX, InstalledModel, find_installed

log = logging.getLogger(__name__)

DEFAULT_HUB_URL = "https://huggingface.co"
ProgressCallback = Callable[[str, int, int | None], None]
"""``on_progress(dest, done_bytes, total_bytes)`` for the file being fetched: ``dest`` is its path
relative to the models folder, ``done_bytes`` grows monotonically and ``total_bytes`` is None
while the size is unknown. A file found in place or in the cache reports ``(size, size)``."""

HASH_BLOCK_BYTES = 8 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadFailed(EngineFailure):
    """A file could not be fetched (or, offline, is not in the cache)."""

    code = "download_failed"


class ChecksumMismatch(DownloadFailed):
    """A fetched file is not the expected one; it has been deleted."""

    code = "checksum_mismatch"


def hub_url_from_env() -> str:
    """``VOXSERVE_HUB_URL``, else ``HF_ENDPOINT`` (the hub client's variable), else the hub."""
    return os.environ.get("VOXSERVE_HUB_URL") or os.environ.get("HF_ENDPOINT") or DEFAULT_HUB_URL


def token_from_env() -> str | None:
    """The hub access token from ``HF_TOKEN``, if set (else the client's stored login)."""
    return os.environ.get("HF_TOKEN") or None


@dataclass(frozen=True)
class HubOptions:
    """How to reach the hub and its cache.

    Attributes:
        hub_url: the hub's base URL; default :func:`hub_url_from_env`.
        token: an access token; default ``HF_TOKEN`` or the client's stored login.
        cache_dir: the client's cache; default its own (``HF_HUB_CACHE``).
        offline: use the cache only, never the network.
    """

    hub_url: str | None = None
    token: str | None = None
    cache_dir: Path | None = None
    offline: bool = False

    @property
    def endpoint(self) -> str:
        return (self.hub_url or hub_url_from_env()).rstrip("/")


def pull(
    entry: CatalogEntry,
    models_dir: Path,
    *,
    hub: HubOptions | None = None,
    on_progress: ProgressCallback | None = None,
    force: bool = False,
) -> InstalledModel:
    """Fetch every file of ``entry`` into ``models_dir``; files already in place are kept.
    Blocking (network and disk): the CLI's, not the server's.

    Args:
        entry: what to fetch (see :data:`voxserve.models.catalog.KNOWN_MODELS`).
        models_dir: the models folder; created when missing.
        hub: the hub and cache to use; default :class:`HubOptions` from the environment.
        on_progress: called as bytes arrive, see :data:`ProgressCallback`.
        force: fetch every file afresh, even one already in place or in the cache.

    Returns:
        The installed model as :func:`voxserve.models.layout.scan` sees it.

    Raises:
        InvalidRequest: the hub refused access (a gated model: accept its terms, set HF_TOKEN).
        NotFound: a file is missing on the hub.
        DownloadFailed: the transfer failed, or offline and the file is not in the cache.
        ChecksumMismatch: a file's sha256 or size is wrong; the cached copy is deleted.
    """
    options = hub or HubOptions()
    for remote in entry.files:
        _fetch(entry, remote, models_dir, options, on_progress, force)
    for bundled in entry.bundled:
        _write_bundled(bundled, models_dir / bundled.dest)
    installed = find_installed(models_dir, entry.name)
    if installed is None:
        raise EngineFailure(f"{entry.name} was downloaded but is not laid out as a model.")
    return installed


def in_cache(entry: CatalogEntry, cache_dir: Path | None = None) -> bool:
    """Whether every hub file of ``entry`` is in the client's cache (a pull needs no network)."""
    for remote in entry.files:
        found = huggingface_hub.try_to_load_from_cache(
            remote.repo or entry.repo,
            remote.path_in_repo,
            cache_dir=cache_dir,
            revision=remote.revision or entry.revision,
        )
        if not isinstance(found, str):
            return False
    return True


def _fetch(
    entry: CatalogEntry,
    remote: RemoteFile,
    models_dir: Path,
    options: HubOptions,
    on_progress: ProgressCallback | None,
    force: bool,
) -> None:
    dest = models_dir / remote.dest
    if not force and dest.is_file() and _matches(dest, remote):
        size = dest.stat().st_size
        if on_progress is not None:
            on_progress(remote.dest, size, size)
        return
    cached = _download(entry, remote, options, on_progress, force)
    _check(cached, remote)
    _place(cached, dest)
    if on_progress is not None:
        size = dest.stat().st_size
        on_progress(remote.dest, size, size)


def _download(
    entry: CatalogEntry,
    remote: RemoteFile,
    options: HubOptions,
    on_progress: ProgressCallback | None,
    force: bool,
) -> Path:
    """The file in the client's cache, fetched there first when it is not."""
    repo = remote.repo or entry.repo
    try:
        path = huggingface_hub.hf_hub_download(
            repo,
            remote.path_in_repo,
            revision=remote.revision or entry.revision,
            cache_dir=options.cache_dir,
            endpoint=options.endpoint,
            token=options.token or token_from_env(),
            local_files_only=options.offline,
            force_download=force and not options.offline,
            tqdm_class=_progress_bar(remote.dest, on_progress) if on_progress else None,
        )
    except Exception as exc:
        raise _translate(exc, repo, remote, options) from exc
    return Path(path)


def _translate(exc: Exception, repo: str, remote: RemoteFile, options: HubOptions) -> Exception:
    """The hub client's error as a VoxError that says what to do."""
    where = f"{repo}/{remote.path_in_repo}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    refused = hub_errors.GatedRepoError | hub_errors.RepositoryNotFoundError
    if isinstance(exc, refused) or status in (401, 403):
        return InvalidRequest(
            f"The hub refused {where} (HTTP {status}). A gated model needs its terms accepted "
            "on the hub and HF_TOKEN set to an access token of that account; a private or "
            "missing repository answers the same."
        )
    if isinstance(exc, hub_errors.RemoteEntryNotFoundError | hub_errors.RevisionNotFoundError):
        return NotFound(f"{where} is not on the hub (HTTP 404).")
    if isinstance(exc, hub_errors.LocalEntryNotFoundError):
        offline = options.offline or huggingface_hub.constants.HF_HUB_OFFLINE
        how = "offline" if offline else f"{options.endpoint} is not reachable"
        return DownloadFailed(f"{where} is not in the Hugging Face cache and {how}.")
    return DownloadFailed(f"{remote.dest}: {type(exc).__name__}: {exc}")


def _progress_bar(label: str, on_progress: ProgressCallback) -> type[tqdm]:
    """A silent tqdm class that reports to ``on_progress`` (the client takes a tqdm class)."""

    class Reporting(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            self._done = int(kwargs.get("initial") or 0)
            self._total = kwargs.get("total")
            super().__init__(*args, **kwargs)
            on_progress(label, self._done, self._total)

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            on_progress(label, max(self._done, 0), self._total)
            return None

    return Reporting


def _check(cached: Path, remote: RemoteFile) -> None:
    """Raise ChecksumMismatch (after deleting the cached copy) unless the file is the expected
    one: the catalogue's size and sha256, else the sha256 the cache stores an LFS file under."""
    blob = cached.resolve()
    expected = remote.sha256 or (blob.name if _SHA256.fullmatch(blob.name) else None)
    size = blob.stat().st_size
    problem = None
    if remote.size is not None and size != remote.size:
        problem = f"{size} bytes instead of {remote.size}"
    elif expected is not None and (digest := _hash_file(blob).hexdigest()) != expected:
        problem = f"sha256 {digest} instead of {expected}"
    if problem is None:
        if expected is None:
            log.info("%s: no sha256 known to check; %d bytes", remote.dest, size)
        return
    if blob.parent.name == "blobs":  # the cache's own copy (never a file it links to)
        blob.unlink(missing_ok=True)
        cached.unlink(missing_ok=True)
    raise ChecksumMismatch(f"{remote.dest}: {problem}; the download was deleted, pull again.")


def _place(cached: Path, dest: Path) -> None:
    """Put the cached file at ``dest``: a hard link to the cache's copy, else a copy; through
    ``.part`` and a rename either way."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    part.unlink(missing_ok=True)
    try:
        os.link(cached.resolve(), part)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(cached, part)  # another filesystem, or one without hard links
    os.replace(part, dest)


def _write_bundled(bundled: BundledFile, dest: Path) -> None:
    """Write a file that ships with voxserve, atomically (the engines never see half of it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    part.write_bytes(bundled.read())
    os.replace(part, dest)


def _matches(path: Path, remote: RemoteFile) -> bool:
    """A file in place is kept when it matches what the catalogue knows of it."""
    if remote.size is not None and path.stat().st_size != remote.size:
        return False
    return remote.sha256 is None or _hash_file(path).hexdigest() == remote.sha256


def _hash_file(path: Path) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(HASH_BLOCK_BYTES):
            hasher.update(block)
    return hasher
