"""``serve`` freezes what startup built (#14 item 5): a full garbage collection then walks only
the objects made since, not the ~170,000 that live as long as the process (a walk that held
the event loop for tens to hundreds of milliseconds)."""

from __future__ import annotations

import gc

from voxserve.api.server import freeze_startup_objects


def test_freezing_moves_the_startup_objects_out_of_collections() -> None:
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000
        assert gc.get_count()[0] < 100  # collected first: no startup garbage kept forever
    finally:
        gc.unfreeze()
