"""The models folder: what is installed in it, and removing what is.

The layout is the one the engines discover (``engines/*.discover``) and the one the test-models
fetcher (``../shared/test-models/fetch`` next to a checkout) and :func:`voxserve.models.pull.pull`
write::

    piper/<voice>.onnx + piper/<voice>.onnx.json      one model per voice: ``piper-<voice>``
    faster-whisper-<size>/model.bin, config.json, ...  ``faster-whisper-<size>``
    pocket-tts/config.yaml + the files it names        ``pocket-tts``
    <name>/<file>.gguf                                 a llama.cpp chat model: ``<name>``

A model counts as installed exactly when its engine would serve it: each kind is decided by its
engine's own rule (``discover``, or for Pocket TTS ``problem()``), never by a copy of it here.
Nothing is loaded, so scanning is cheap and needs no optional extra; hidden folders are skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxserve.engines.faster_whisper import FasterWhisperEngine
from voxserve.engines.llama_cpp import LlamaCppEngine
from voxserve.engines.piper import PiperEngine
from voxserve.engines.pocket_tts import PocketTTSEngine
from voxserve.engines.pocket_tts_folder import CONFIG_FILE
from voxserve.engines.pocket_tts_folder import FOLDER as POCKET_TTS_FOLDER
from voxserve.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

ModelKind = Literal["tts", "stt", "chat"]

PIPER_FOLDER = "piper"
PIPER_PREFIX = "piper-"
PART_SUFFIX = ".part"
"""Downloads in progress; never part of an installed model's identity."""


@dataclass(frozen=True)
class InstalledModel:
    """One model found in the models folder.

    Attributes:
        name: the name ``voxserve models`` uses (``piper-en_US-joe-medium``,
            ``faster-whisper-base``, ``smollm2-135m-instruct``, ``pocket-tts``).
        kind: what it serves: ``tts``, ``stt`` or ``chat``.
        engine: the engine that serves it (``piper``, ``faster-whisper``, ``llama-cpp``,
            ``pocket-tts``).
        path: the model's folder, or for a Piper voice its ``.onnx`` file.
        size_bytes: the size of all its files.
        files: every file that belongs to it, sorted.
    """

    name: str
    kind: ModelKind
    engine: str
    path: Path
    size_bytes: int
    files: tuple[Path, ...]


def scan(models_dir: Path) -> list[InstalledModel]:
    """Every complete model in ``models_dir``, sorted by name (a missing folder holds none).

    Incomplete models (a faster-whisper folder without ``model.bin``, a Piper voice without a
    readable ``.onnx.json``, a ``pocket-tts`` folder without its config or the files the config
    names, a folder whose only GGUF is still a ``.part``) are not listed.
    """
    if not models_dir.is_dir():
        return []
    found: dict[str, InstalledModel] = {}
    # A folder two engines could claim is the first one's, in this order.
    for model in (
        *_piper_voices(models_dir),
        *_faster_whisper_models(models_dir),
        *_pocket_tts_models(models_dir),
        *_chat_models(models_dir),
    ):
        if not model.path.relative_to(models_dir).parts[0].startswith("."):
            found.setdefault(model.name, model)
    return sorted(found.values(), key=lambda model: model.name)


def find_installed(models_dir: Path, name: str) -> InstalledModel | None:
    """The installed model called ``name``, or None."""
    return next((model for model in scan(models_dir) if model.name == name), None)


def remove(models_dir: Path, name: str) -> InstalledModel:
    """Delete the installed model called ``name`` (its files, or its whole folder).

    Only paths inside ``models_dir`` are deleted: a model folder that is a symbolic link loses
    the link, never what it points to.

    Returns:
        The model as it was before removal.

    Raises:
        NotFound: no installed model has that name.
        InvalidRequest: a file of the model resolves outside ``models_dir`` (e.g. ``piper/`` is
            a link to another folder); nothing is deleted then.
    """
    model = find_installed(models_dir, name)
    if model is None:
        raise NotFound(f"Model '{name}' is not installed in {models_dir}.")
    root = models_dir.resolve()
    if model.engine == "piper":
        for path in (*model.files, *_part_files(model.files)):
            _unlink_inside(root, path)
    else:
        _remove_folder_inside(root, model.path)
    log.info("removed model %s (%d bytes)", model.name, model.size_bytes)
    return model


def _piper_voices(models_dir: Path) -> Iterator[InstalledModel]:
    engine = PiperEngine.discover(models_dir)
    if engine is None:
        return
    for voice in engine.capabilities().voices:  # reads nothing: the voices discover found
        onnx = models_dir / PIPER_FOLDER / f"{voice.id}.onnx"
        files = (onnx, onnx.with_name(onnx.name + ".json"))
        yield InstalledModel(
            name=PIPER_PREFIX + voice.id,
            kind="tts",
            engine="piper",
            path=onnx,
            size_bytes=_total_size(files),
            files=files,
        )


def _faster_whisper_models(models_dir: Path) -> Iterator[InstalledModel]:
    for engine in FasterWhisperEngine.discover(models_dir):
        yield _folder_model(engine.model_dir, "stt", "faster-whisper")


def _pocket_tts_models(models_dir: Path) -> Iterator[InstalledModel]:
    config = models_dir / POCKET_TTS_FOLDER / CONFIG_FILE
    if not config.is_file():
        return
    try:
        problem = PocketTTSEngine(config).problem()
    except ValueError:
        return  # an unreadable config
    if problem is None:
        yield _folder_model(config.parent, "tts", "pocket-tts")


def _chat_models(models_dir: Path) -> Iterator[InstalledModel]:
    for engine in LlamaCppEngine.discover(models_dir):
        yield _folder_model(engine.model_path.parent, "chat", "llama-cpp")


def _folder_model(folder: Path, kind: ModelKind, engine: str) -> InstalledModel:
    files = tuple(sorted(p for p in folder.rglob("*") if p.is_file()))
    return InstalledModel(
        name=folder.name,
        kind=kind,
        engine=engine,
        path=folder,
        size_bytes=_total_size(files),
        files=files,
    )


def _total_size(files: tuple[Path, ...]) -> int:
    return sum(p.stat().st_size for p in files)


def _part_files(files: tuple[Path, ...]) -> list[Path]:
    parts = (f.with_name(f.name + PART_SUFFIX) for f in files)
    return [p for p in parts if p.exists() or p.is_symlink()]


def _inside(root: Path, path: Path) -> bool:
    """``path`` itself (not what a link points to) lives strictly inside ``root``."""
    location = path.parent.resolve() / path.name
    return location != root and location.is_relative_to(root)


def _unlink_inside(root: Path, path: Path) -> None:
    if not _inside(root, path):
        raise InvalidRequest(f"{path} is outside the models folder; not deleting it.")
    path.unlink(missing_ok=True)


def _remove_folder_inside(root: Path, folder: Path) -> None:
    if not _inside(root, folder) or folder.parent.resolve() != root:
        raise InvalidRequest(f"{folder} is not a folder of the models folder; not deleting it.")
    if folder.is_symlink():
        # rmtree refuses links; removing the link is what "remove" means for a linked folder.
        os.unlink(folder)
        return
    shutil.rmtree(folder)
