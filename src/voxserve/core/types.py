"""The types the API layer needs from below core, re-exported so that ``voxserve.api`` imports
neither ``voxserve.storage`` nor ``voxserve.engines`` (the dependency rule: routes see services).

Re-exports only: each name is defined where it lives; nothing is added here.
"""

from __future__ import annotations

from voxserve.engines.handles import STTHandle
from voxserve.engines.protocol import ChatDelta, Segment, Word
from voxserve.engines.registry import Engine, engines_to_preload
from voxserve.storage.protocol import (
    ApiKey,
    FileRecord,
    Owner,
    Storage,
    UsageRecord,
    UsageTotals,
    VoiceQuery,
)

__all__ = [
    "ApiKey",
    "ChatDelta",
    "Engine",
    "FileRecord",
    "Owner",
    "STTHandle",
    "Segment",
    "Storage",
    "UsageRecord",
    "UsageTotals",
    "VoiceQuery",
    "Word",
    "engines_to_preload",
]
