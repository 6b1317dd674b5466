"""Builds a Hugging Face hub cache folder from the test models, in the layout the hub client
writes (``models--<org>--<name>/{refs,blobs,snapshots}``), as if the user had pulled them with
another tool. Blobs are hard links to the test models' files (copies across filesystems)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from tests.unit.models.fake_hub import COMMIT
from voxserve.models.catalog import CatalogEntry


def add_to_cache(cache: Path, entry: CatalogEntry, test_models: Path) -> None:
    """Put every hub file of ``entry`` into ``cache``, taken from the test models folder (whose
    layout is the models folder's, so each file is at its ``dest``)."""
    for remote in entry.files:
        source = test_models / remote.dest
        repo = cache / f"models--{(remote.repo or entry.repo).replace('/', '--')}"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / (remote.revision or entry.revision)).write_text(COMMIT)
        blob = repo / "blobs" / (remote.sha256 or _sha256(source))
        blob.parent.mkdir(exist_ok=True)
        if not blob.exists():
            try:
                os.link(source, blob)
            except OSError:
                shutil.copyfile(source, blob)
        pointer = repo / "snapshots" / COMMIT / remote.path_in_repo
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
