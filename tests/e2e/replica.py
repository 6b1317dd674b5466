"""One voxserve replica for tests/e2e/test_replicas.py, run as a process of its own:
``python -m tests.e2e.replica``.

It is ``voxserve serve`` (settings from the ``VOXSERVE_`` environment, the same ``create_app``
and uvicorn) with the deterministic fake engines in place of the discovered ones, so that a
replica starts in seconds and clones voices without model weights. Everything else (database,
S3 blob store, the secret, migrations, cleanup) is the real server's.
"""

from __future__ import annotations

import uvicorn

from voxserve.api.app import create_app
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.logs import configure_logging
from voxserve.settings import Settings

TRANSCRIPT = "A replica heard this. It is the fake transcript."


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    engines = [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]
    app = create_app(settings, engines=engines)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
