"""Abandoning a decode part-way: a realtime step that a commit has made useless.

A stream marks the decode it runs as one that may be abandoned (``abandonable(event)``, in the
thread that runs it); an engine calls ``checkpoint()`` between the stages of its decode (an
encoder pass, a generation, an alignment). Once the event is set, the next checkpoint raises
``DecodeAbandoned``, so the engine is free after the stage under way instead of the whole
decode. Engines without checkpoints simply finish; outside ``abandonable`` a checkpoint does
nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class DecodeAbandoned(Exception):
    """The decode was abandoned at a checkpoint (its caller no longer wants the result)."""


_current = threading.local()


@contextmanager
def abandonable(event: threading.Event) -> Iterator[None]:
    """Checkpoints reached in this thread inside the block raise once ``event`` is set."""
    previous = getattr(_current, "event", None)
    _current.event = event
    try:
        yield
    finally:
        _current.event = previous


def checkpoint() -> None:
    """Raises DecodeAbandoned when the decode running in this thread has been abandoned."""
    event: threading.Event | None = getattr(_current, "event", None)
    if event is not None and event.is_set():
        raise DecodeAbandoned
