"""Settings from a TOML file, and the checks that keep configuration mistakes from passing
silently: unknown ``VOXSERVE_`` variables and unknown file keys (reported with the closest
valid name), and bad values described in one line each, naming the setting.

The file (``VOXSERVE_CONFIG`` or ``voxserve serve --config``) holds the same names as the
settings, sections as tables::

    port = 8080
    [engines]
    default_tts = "piper"
    [limits]
    max_custom_voices = 50

The environment overrides the file, key by key (``VOXSERVE_ENGINES__DEFAULT_TTS`` wins over
``[engines] default_tts`` and leaves the rest of ``[engines]`` as the file says).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

ENV_PREFIX = "VOXSERVE_"
CONFIG_ENV = "VOXSERVE_CONFIG"
NOT_SETTINGS = ("VOXSERVE_TEST_", "VOXSERVE_HUB_URL", "VOXSERVE_MIGRATE_TO_DATABASE")
"""``VOXSERVE_`` variables that are not settings: the test suite's, the hub mirror that
``voxserve models pull`` reads, and ``voxserve migrate-storage``'s target database."""


class ConfigFileError(ValueError):
    """The configuration file is missing or is not valid TOML."""


def config_path(explicit: object, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The file to read: the ``config`` given to ``Settings``, else ``VOXSERVE_CONFIG``."""
    value = explicit if explicit is not None else environ.get(CONFIG_ENV)
    return Path(str(value)).expanduser() if value else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's tables as a dict.

    Raises:
        ConfigFileError: no such file, or not valid TOML (with the line it fails at).
    """
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigFileError(f"config file {path}: no such file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"config file {path}: {exc}") from None


def section_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section a field holds (``X`` or ``X | None``), if it is one."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_mapping(annotation: Any) -> bool:
    """A free-form table (``dict[str, ...]``): any key below it is valid."""
    return any((get_origin(a) or a) in (dict, Mapping) for a in (annotation, *get_args(annotation)))


def setting_names(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every setting's path (``("engines", "default_tts")``), sections included."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        yield path
        section = section_of(info.annotation)
        if section is not None:
            yield from setting_names(section, path)


def _known(model: type[BaseModel], path: tuple[str, ...]) -> bool:
    info = model.model_fields.get(path[0])
    if info is None:
        return False
    if len(path) == 1 or _is_mapping(info.annotation):
        return True
    section = section_of(info.annotation)
    return section is not None and _known(section, path[1:])


def env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(path).upper()


def unknown_variables(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``VOXSERVE_`` variable that names no setting (it is ignored)."""
    valid = [env_name(p) for p in setting_names(model)]
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(NOT_SETTINGS):
            continue
        path = tuple(upper.removeprefix(ENV_PREFIX).lower().split("__"))
        if not _known(model, path):
            warnings.append(f"unknown setting {name} (ignored){_closest(upper, valid)}")
    return warnings


def unknown_keys(model: type[BaseModel], data: Mapping[str, Any], path: Path) -> list[str]:
    """A warning for each key of the file that names no setting (it is ignored)."""
    valid = [".".join(p) for p in setting_names(model)]
    return [
        f"unknown key {key} in {path} (ignored){_closest(key, valid)}"
        for key in _keys(model, data, ())
    ]


def _keys(model: type[BaseModel], data: Mapping[str, Any], prefix: tuple[str, ...]) -> list[str]:
    unknown = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            unknown.append(".".join((*prefix, key)))
            continue
        section = section_of(info.annotation)
        if section is not None and isinstance(value, Mapping):
            unknown.extend(_keys(section, value, (*prefix, key)))
    return unknown


def _closest(name: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


def describe_error(exc: Exception) -> list[str]:
    """One line per bad setting, naming it (its variable and file key), what is wrong and the
    value given; never a traceback."""
    if isinstance(exc, ValidationError):
        return [_describe(error) for error in exc.errors(include_url=False)]
    if isinstance(exc, SettingsError):
        field = re.search(r'field "(\w+)"', str(exc))
        name = field.group(1) if field else "?"
        return [
            f"invalid setting {name} ({env_name((name,))} or one of {env_name((name,))}__*): "
            "lists and tables are given as JSON, e.g. '[\"piper\"]' or '{\"piper\": 2}'"
        ]
    if isinstance(exc, ConfigFileError):
        return [str(exc).splitlines()[0]]
    return [f"{type(exc).__name__}: {exc}"]


_SECRET_WORDS = ("key", "secret", "password", "token", "url")
"""A setting whose name holds one of these may carry a credential (a database URL's password,
an API key): its bad value is never echoed to the terminal or the logs."""


def _describe(error: Any) -> str:
    loc = tuple(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        return f"invalid settings: {message}"
    given = error.get("input")
    secret = any(word in part.lower() for part in loc for word in _SECRET_WORDS)
    shown = "" if secret or isinstance(given, dict | list) else f" (got {given!r})"
    return f"invalid setting {'.'.join(loc)} ({env_name(loc)}): {message}{shown}"
