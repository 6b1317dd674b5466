"""The Pocket TTS model folder: its config with every file it names resolved locally, its preset
voices, and the version that ties a stored voice state to the model that made it.

Layout and rules are in the ``pocket_tts`` module docstring. Needs neither torch nor pocket-tts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from voxserve.engines.protocol import PresetVoice

FOLDER = "pocket-tts"
CONFIG_FILE = "config.yaml"
VOICES_FOLDER = "voices"
_REMOTE_PREFIXES = ("hf://", "http://", "https://")
_WEIGHT_KEYS = (("weights_path",), ("flow_lm", "weights_path"))
_PATH_KEYS = (
    *_WEIGHT_KEYS,
    ("weights_path_without_voice_cloning",),
    ("mimi", "weights_path"),
    ("flow_lm", "lookup_table", "tokenizer_path"),
)
"""Where a pocket-tts config names files."""


@dataclass(frozen=True)
class ModelFolder:
    """A pocket-tts config with every file it names resolved against its folder."""

    config_path: Path
    config: dict[str, Any]
    """The config with absolute paths, ready for ``TTSModel.load_model``."""
    files: tuple[Path, ...]
    """Every local file the config names."""
    problem: str | None
    """Why the model cannot load (a remote or missing file), or None."""

    @property
    def has_weights(self) -> bool:
        return any(config_value(self.config, keys) for keys in _WEIGHT_KEYS)

    @classmethod
    def read(cls, config_path: Path) -> ModelFolder:
        """Raises ValueError when the YAML cannot be read as a mapping."""
        try:
            config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read pocket-tts config {config_path}: {exc}") from exc
        if not isinstance(config, dict):
            raise ValueError(f"pocket-tts config {config_path} is not a YAML mapping")
        files: list[Path] = []
        problem = None
        for keys in _PATH_KEYS:
            value = config_value(config, keys)
            if not value:
                continue
            # Messages may reach clients: name the key and file, never the server's paths.
            where = f"{FOLDER}/{config_path.name}: {'.'.join(keys)}"
            if str(value).startswith(_REMOTE_PREFIXES):
                problem = f"{where} must name a local file (nothing is downloaded)"
                continue
            path = (config_path.parent / str(value)).resolve()
            _set(config, keys, str(path))
            files.append(path)
            if not path.is_file():
                problem = f"{where} names a missing file ({path.name})"
        return cls(config_path, config, tuple(files), problem)


def preset_voices(folder: Path, language: str) -> dict[str, tuple[PresetVoice, Path]]:
    """The voice states in ``folder`` (``<name>.safetensors``) by voice id."""
    if not folder.is_dir():
        return {}
    return {
        path.stem: (PresetVoice(id=path.stem, name=path.stem.title(), languages=(language,)), path)
        for path in sorted(folder.glob("*.safetensors"))
    }


def model_version(folder: ModelFolder) -> str:
    """Package version plus a digest of the config and the names and sizes of its files: a
    stored voice state only fits the model that made it."""
    try:
        package = importlib.metadata.version("pocket-tts")
    except importlib.metadata.PackageNotFoundError:
        package = "none"
    digest = hashlib.sha256(folder.config_path.read_bytes())
    for path in folder.files:
        size = path.stat().st_size if path.is_file() else -1
        digest.update(f"\0{path.name}\0{size}".encode())
    if not folder.has_weights:
        digest.update(b"\0random")
    return f"{package}-{digest.hexdigest()[:12]}"


def config_value(config: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The value at ``keys`` in a nested config, or None where any level is missing."""
    node: Any = config
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _set(config: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    node = config
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
