"""Checking pooled PostgreSQL connections before use, only where it can matter.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip per transaction,
and a speech request runs several (auth, credits, usage), so on a busy machine it doubled the
cost of each (1.3 to 3 ms measured under load). A connection that was in use moments ago is
almost never dead; one idle for a while may be (PostgreSQL restarted, a proxy or firewall
dropped it). So a connection idle longer than ``IDLE_BEFORE_PING_SECONDS`` is pinged as it is
checked out, and a failed ping raises ``DisconnectionError``, on which the pool drops that
connection and checks out another (SQLAlchemy's documented "pessimistic" recipe with a
checkout event). A connection that died in the last seconds still fails its one request;
SQLAlchemy then invalidates the pool's other connections, so the next requests reconnect.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

IDLE_BEFORE_PING_SECONDS = 10.0
"""A pooled connection idle longer than this is pinged before it is handed out."""
_IDLE_SINCE = "voxserve_idle_since"


def ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping this engine's pooled connections on checkout when they have been idle a while."""
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING_SECONDS:
            return  # new, or in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's own error for a dead connection
            raise DisconnectionError("a pooled connection no longer answers") from exc
