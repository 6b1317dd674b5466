"""The models folder: what is installed in it, and removing what is.

The layout is the one the engines discover (``engines/*.discover``) and the one the test-models
fetcher (``../shared/test-models/fetch`` next to a checkout) and :func:`voxserve.models.pull.pull`
write::

    piper/<voice>.onnx + piper/<voice>.onnx.json      one model per voice: ``piper-<voice>``
    faster-whisper-<size>/model.bin, config.json, ...  ``faster-whisper-<size>``
    pocket-tts/...                                     ``pocket-tts`` (any ``*.safetensors`` inside)
    <name>/<file>.gguf                                 a llama.cpp chat model: ``<name>``

Only files are looked at: nothing is loaded, so scanning is cheap and needs no optional extra.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxserve.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

ModelKind = Literal["tts", "stt", "chat"]

PIPER_FOLDER = "piper"
PIPER_PREFIX = "piper-"
FASTER_WHISPER_PREFIX = "faster-whisper-"
FASTER_WHISPER_REQUIRED = ("model.bin", "config.json", "tokenizer.json")
"""What ``FasterWhisperEngine`` needs to load a folder (the vocabulary may be .txt or .json)."""
POCKET_TTS_FOLDER = "pocket-tts"
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

    Incomplete models (a faster-whisper folder without ``model.bin``, a Piper voice without its
    ``.onnx.json``, a folder whose only GGUF is still a ``.part``) are not listed.
    """
    if not models_dir.is_dir():
        return []
    found: list[InstalledModel] = []
    for entry in sorted(models_dir.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.name == PIPER_FOLDER:
            found.extend(_piper_voices(entry))
        else:
            model = _folder_model(entry)
            if model is not None:
                found.append(model)
    return sorted(found, key=lambda model: model.name)


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


def _piper_voices(folder: Path) -> Iterator[InstalledModel]:
    for onnx in sorted(folder.glob("*.onnx")):
        config = onnx.with_name(onnx.name + ".json")
        if not (onnx.is_file() and config.is_file()):
            continue
        files = (onnx, config)
        yield InstalledModel(
            name=PIPER_PREFIX + onnx.stem,
            kind="tts",
            engine="piper",
            path=onnx,
            size_bytes=_total_size(files),
            files=files,
        )


def _folder_model(folder: Path) -> InstalledModel | None:
    kind_engine = _classify(folder)
    if kind_engine is None:
        return None
    files = tuple(sorted(p for p in folder.rglob("*") if p.is_file()))
    kind, engine = kind_engine
    return InstalledModel(
        name=folder.name,
        kind=kind,
        engine=engine,
        path=folder,
        size_bytes=_total_size(files),
        files=files,
    )


def _classify(folder: Path) -> tuple[ModelKind, str] | None:
    """What a top-level folder holds, by the same rules as the engines' ``discover``."""
    name = folder.name
    if name.startswith(FASTER_WHISPER_PREFIX) and name != FASTER_WHISPER_PREFIX:
        if all((folder / f).is_file() for f in FASTER_WHISPER_REQUIRED):
            return "stt", "faster-whisper"
        return None
    if name == POCKET_TTS_FOLDER:
        return ("tts", "pocket-tts") if _has_file(folder.rglob("*.safetensors")) else None
    # Multimodal projectors (mmproj) are not a chat model on their own.
    ggufs = (p for p in folder.glob("*.gguf") if "mmproj" not in p.name.lower())
    return ("chat", "llama-cpp") if _has_file(ggufs) else None


def _has_file(paths: Iterator[Path]) -> bool:
    return any(p.is_file() for p in paths)


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
