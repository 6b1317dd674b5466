"""The models ``scripts/serve`` offers on first start: a good voice and accurate transcription.

``plan`` decides, from the models folder, the Hugging Face cache and whether the hub answers,
what a first start should do; the CLI (``voxserve models recommend --if-missing``) asks and
pulls. Nothing here asks or downloads, so each outcome is a plain function result:

- ``present``: every starter model is installed; nothing to do.
- ``declined``: the offer was turned down before (remembered in the models folder).
- ``from-cache``: the missing ones are all in the Hugging Face cache: link them, no network.
- ``offer``: the hub answers; ask (default yes), or pull when told to beforehand.
- ``unreachable``: the hub does not answer within a short timeout: start on the built-in engines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import huggingface_hub
from huggingface_hub import errors as hub_errors

from voxserve.models.catalog import CatalogEntry, find
from voxserve.models.layout import find_installed
from voxserve.models.pull import HubOptions, in_cache, token_from_env

STARTER_MODELS = ("piper-en_US-joe-medium", "faster-whisper-base")
"""A Piper voice (CC0, quick on a CPU) and Whisper base (99 languages)."""
DECLINED_MARKER = ".starter-models-declined"
"""Left in the models folder when the offer was turned down (hidden: no model's file)."""
PROBE_TIMEOUT_SECONDS = 3.0

Outcome = Literal["present", "from-cache", "offer", "unreachable", "declined"]
Probe = Callable[[CatalogEntry, HubOptions], bool]


@dataclass(frozen=True)
class StarterPlan:
    """What a first start should do.

    Attributes:
        outcome: see the module docstring.
        missing: the starter models not installed, in ``STARTER_MODELS`` order.
        download_bytes: roughly what pulling ``missing`` downloads (0 when all are cached).
    """

    outcome: Outcome
    missing: tuple[CatalogEntry, ...]
    download_bytes: int = 0


def starter_entries() -> tuple[CatalogEntry, ...]:
    entries = tuple(find(name) for name in STARTER_MODELS)
    assert all(entries), "every starter model is in the catalogue"
    return entries  # type: ignore[return-value]


def plan(models_dir: Path, hub: HubOptions, *, probe: Probe | None = None) -> StarterPlan:
    """Decide what a first start does. Blocking (files; at most one short request to the hub).

    Args:
        models_dir: the models folder.
        hub: the hub and cache (``offline`` counts as unreachable).
        probe: whether the hub answers for an entry; default :func:`hub_answers`.
    """
    missing = tuple(e for e in starter_entries() if find_installed(models_dir, e.name) is None)
    if not missing:
        return StarterPlan("present", ())
    if (models_dir / DECLINED_MARKER).exists():
        return StarterPlan("declined", missing)
    to_fetch = [entry for entry in missing if not in_cache(entry, hub.cache_dir)]
    if not to_fetch:
        return StarterPlan("from-cache", missing)
    size = sum(entry.size_bytes for entry in to_fetch)
    answers = not hub.offline and (probe or hub_answers)(to_fetch[0], hub)
    return StarterPlan("offer" if answers else "unreachable", missing, size)


def remember_declined(models_dir: Path) -> None:
    """Do not offer again on later starts (``voxserve models pull`` still works)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / DECLINED_MARKER).write_text("the starter models were declined\n")


def forget_declined(models_dir: Path) -> None:
    """Offer again (the user asked for the starter models after all)."""
    (models_dir / DECLINED_MARKER).unlink(missing_ok=True)


def hub_answers(entry: CatalogEntry, hub: HubOptions) -> bool:
    """Whether the hub answers a metadata request for the entry's first file within
    ``PROBE_TIMEOUT_SECONDS`` (any HTTP answer from a hub counts; no retries)."""
    first = entry.files[0]
    url = huggingface_hub.hf_hub_url(
        first.repo or entry.repo,
        first.path_in_repo,
        revision=first.revision or entry.revision,
        endpoint=hub.endpoint,
    )
    try:
        huggingface_hub.get_hf_file_metadata(
            url, token=hub.token or token_from_env(), timeout=PROBE_TIMEOUT_SECONDS
        )
    except hub_errors.HfHubHTTPError:
        return True  # the hub answered (a refusal is for the pull to explain)
    except Exception:
        return False  # no answer, a timeout, offline mode, or something that is not a hub
    return True
