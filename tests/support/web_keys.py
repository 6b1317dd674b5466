"""Keys made before a test server starts (in its SQLite database)."""

from __future__ import annotations

from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


async def make_keys(settings: Settings, *names: str, admin: bool = False) -> list[str]:
    """Create one key (and owner) per name; returns the secrets."""
    async with open_services(settings, engines=[FakeTTSEngine()]) as services:
        return [(await services.auth.create_key(n, admin=admin)).secret for n in names]
