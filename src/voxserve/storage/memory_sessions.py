"""Web app sign-in sessions in memory (see ``storage.memory``)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from voxserve.storage.memory_state import MemoryState, utc, utc_fields
from voxserve.storage.protocol import ApiKey, Owner, WebSession


class MemorySessionRepository:
    """``SessionRepository`` in memory; a session is live only while its key is active."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def create(self, session: WebSession) -> WebSession:
        session = utc_fields(session)
        await self._state.turn()
        with self._state.lock:
            if session.owner_id not in self._state.owners or session.key_id not in self._state.keys:
                raise ValueError("unknown owner or key: create them first")
            self._state.sessions[session.id] = session
        return session

    async def find_live(
        self, session_id: str, now: datetime
    ) -> tuple[WebSession, ApiKey, Owner] | None:
        now = utc(now)
        with self._state.lock:
            found = self._state.sessions.get(session_id)
            if found is None or found.revoked_at is not None or found.expires_at <= now:
                return None
            key = self._state.keys.get(found.key_id)
            if key is None or key[0].revoked_at is not None:
                return None
            return found, key[0], self._state.owners[found.owner_id]

    async def revoke(self, session_id: str, at: datetime) -> bool:
        at = utc(at)
        await self._state.turn()
        with self._state.lock:
            found = self._state.sessions.get(session_id)
            if found is None or found.revoked_at is not None:
                return False
            self._state.sessions[session_id] = dataclasses.replace(found, revoked_at=at)
            return True

    async def purge_expired(self, before: datetime) -> int:
        before = utc(before)
        with self._state.lock:
            gone = [
                s.id
                for s in self._state.sessions.values()
                if s.expires_at < before or (s.revoked_at is not None and s.revoked_at < before)
            ]
            for session_id in gone:
                del self._state.sessions[session_id]
        return len(gone)
