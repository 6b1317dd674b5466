"""API keys, owners and web sessions: create, list and revoke keys; turn a presented key or a
session cookie's token into its principal; sign a browser in and out."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from voxserve.errors import Conflict, NotFound, Unauthorized
from voxserve.storage.protocol import (
    ApiKey,
    KeylessState,
    KeyRepository,
    Owner,
    SessionRepository,
    WebSession,
)

LOCAL_OWNER_ID = "local"
"""The owner every request runs as when no key exists and the server is bound to loopback."""
KEY_PREFIX = "vx-"


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    owner: Owner
    secret: str
    """The key itself: shown once, never stored."""


@dataclass(frozen=True)
class Principal:
    """Who a request runs as."""

    owner: Owner
    admin: bool
    """An operator: may see every owner and key, create owners and add credits."""
    key_id: str | None
    """The key presented or signed in with; None in keyless loopback mode."""


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    token: str
    """The session cookie's value: shown to the browser once, only its hash is stored."""
    session: WebSession


def hash_key(secret: str) -> str:
    # Keys are 256-bit random strings, so a plain SHA-256 is enough (no dictionary to guard).
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthService:
    """Issues keys and authenticates requests."""

    def __init__(
        self,
        keys: KeyRepository,
        *,
        open_when_keyless: bool,
        reopen_after_revocation: bool = False,
        sessions: SessionRepository | None = None,
        session_lifetime: timedelta = timedelta(days=7),
    ) -> None:
        """Args:
        keys: the key repository.
        sessions: web sessions (None: signing in is refused).
        session_lifetime: how long a web session lasts from sign-in.
        open_when_keyless: with no active key, run requests as the local owner (loopback only).
        reopen_after_revocation: keyless mode may come back once every key was revoked (the
            operator's explicit choice); off, a server that ever had a key always needs one.
        """
        self._keys = keys
        self._open_when_keyless = open_when_keyless
        self._reopen_after_revocation = reopen_after_revocation
        self._sessions = sessions
        self._session_lifetime = session_lifetime

    async def create_key(
        self,
        name: str,
        *,
        owner_id: str | None = None,
        credits: int | None = None,
        admin: bool = False,
    ) -> NewKey:
        """Create a key for an existing owner, or for a new owner named ``name``.

        Raises:
            NotFound: ``owner_id`` names no owner.
        """
        if owner_id is None:
            owner = await self._keys.create_owner(name, credits)
        else:
            found = await self._keys.get_owner(owner_id)
            if found is None:
                raise NotFound(f"Owner '{owner_id}' not found.")
            owner = found
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = await self._keys.create_key(owner.id, name, hash_key(secret), secret[:8], admin=admin)
        return NewKey(key=key, owner=owner, secret=secret)

    async def list_keys(self, *, owner_id: str | None = None) -> list[ApiKey]:
        """Every key (revoked ones too), or only ``owner_id``'s."""
        keys = await self._keys.list_keys()
        return [k for k in keys if owner_id is None or k.owner_id == owner_id]

    async def revoke_key(self, key_id: str, *, owner_id: str | None = None) -> None:
        """Revoke a key (only one of ``owner_id``'s when given): its web sessions end too.

        Raises:
            NotFound: no active key has this id (or it is another owner's).
        """
        if owner_id is not None and not any(
            k.id == key_id for k in await self.list_keys(owner_id=owner_id)
        ):
            raise NotFound(f"Key '{key_id}' not found.")
        if not await self._keys.revoke_key(key_id):
            raise NotFound(f"Key '{key_id}' not found.")

    async def keyless(self) -> bool:
        """No key is needed: none is active, and none ever existed (unless the operator lets
        keyless mode come back after revoking every key)."""
        return self._keyless(await self._keys.keyless_state(LOCAL_OWNER_ID))

    async def open_keyless(self) -> bool:
        """Requests without a key run as the local owner now (loopback server, no keys)."""
        return self._open_when_keyless and await self.keyless()

    def _keyless(self, state: KeylessState) -> bool:
        if state.any_active:
            return False
        return self._reopen_after_revocation or not state.any_ever

    async def authenticate(self, secret: str | None) -> Owner:
        """The owner of a presented key (or the local owner in keyless loopback mode).

        Raises:
            Unauthorized: no key, or a wrong or revoked one.
        """
        return (await self.principal(secret)).owner

    async def principal(self, secret: str | None) -> Principal:
        """Who a presented key (or keyless loopback mode, as an operator) runs as.

        One database round trip for a presented key, one for keyless mode (two for a key in
        keyless mode, which SDKs send anyway). Nothing is cached: a key revoked here or on
        another replica is refused from the next request on.

        Raises:
            Unauthorized: no key, or a wrong or revoked one.
        """
        if secret:
            found = await self._keys.find_key(hash_key(secret))
            if found is not None:
                key, owner = found
                if key.revoked_at is not None:
                    raise Unauthorized("This API key was revoked.")
                return Principal(owner, key.admin, key.id)
        # Keyless loopback mode takes any key too: SDKs such as openai insist on sending one.
        local = await self._keyless_owner()
        if local is not None:
            return Principal(local, admin=True, key_id=None)
        if secret:
            raise Unauthorized("Invalid API key.")
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
        )

    async def _keyless_owner(self) -> Owner | None:
        """The local owner when keyless loopback mode is open now, else None."""
        if not self._open_when_keyless:
            return None
        state = await self._keys.keyless_state(LOCAL_OWNER_ID)
        if not self._keyless(state):
            return None
        # The upsert takes the write lock: needed only the first time.
        return state.owner or await self._keys.get_or_create_owner(LOCAL_OWNER_ID, "local")

    async def sign_in(self, secret: str, *, previous_token: str | None = None) -> SignedIn:
        """Start a web session for a valid key, with a new token (the one the browser had, if
        any, is ended: a session is never carried over a sign-in).

        Raises:
            Unauthorized: no key, a wrong or revoked one.
            Conflict: this server keeps no sessions.
        """
        sessions = self._need_sessions()
        if not secret:
            raise Unauthorized("Enter an API key to sign in.")
        found = await self._keys.find_key(hash_key(secret))
        if found is None:
            raise Unauthorized("Invalid API key.")
        if found[0].revoked_at is not None:
            raise Unauthorized("This API key was revoked.")
        if previous_token:
            await self.sign_out(previous_token)
        key, owner = found
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        # Sign-ins are rare: a good moment to forget sessions that ended a day ago or more.
        await sessions.purge_expired(now - timedelta(days=1))
        session = await sessions.create(
            WebSession(hash_key(token), owner.id, key.id, now, now + self._session_lifetime)
        )
        return SignedIn(Principal(owner, key.admin, key.id), token, session)

    async def session_principal(self, token: str) -> Principal | None:
        """Who a session cookie's token runs as; None when the session is unknown, expired,
        signed out, or its key was revoked."""
        if self._sessions is None or not token:
            return None
        found = await self._sessions.find_live(hash_key(token), datetime.now(UTC))
        if found is None:
            return None
        _, key, owner = found
        return Principal(owner, key.admin, key.id)

    async def sign_out(self, token: str) -> None:
        """End the session of this token (nothing happens for an unknown one)."""
        if self._sessions is not None and token:
            await self._sessions.revoke(hash_key(token), datetime.now(UTC))

    async def purge_sessions(self, before: datetime) -> int:
        """Forget sessions that ended before ``before``."""
        return 0 if self._sessions is None else await self._sessions.purge_expired(before)

    def _need_sessions(self) -> SessionRepository:
        if self._sessions is None:
            raise Conflict("This server keeps no web sessions.")
        return self._sessions

    # Owners (operators' tools: the CLI and the admin part of the web app).

    async def list_owners(self) -> list[Owner]:
        return await self._keys.list_owners()

    async def create_owner(self, name: str, credits: int | None = None) -> Owner:
        return await self._keys.create_owner(name, credits)

    async def find_owner(self, name_or_id: str) -> Owner:
        """The owner with this id, else the one owner with this name.

        Raises:
            NotFound: no owner has this id or name.
            Conflict: several owners have this name (use the id).
        """
        found = await self._keys.get_owner(name_or_id)
        if found is not None:
            return found
        named = await self._keys.find_owners_by_name(name_or_id)
        if not named:
            raise NotFound(f"Owner '{name_or_id}' not found.")
        if len(named) > 1:
            ids = ", ".join(o.id for o in named)
            raise Conflict(f"Several owners are called '{name_or_id}' ({ids}): use an id.")
        return named[0]

    async def add_credits(self, owner_id: str, amount: int) -> Owner:
        """Add credits (a negative amount takes them, never below 0); an unlimited owner starts
        a balance of ``amount``.

        Raises:
            NotFound: no owner has this id.
        """
        owner = await self._keys.add_credits(owner_id, amount)
        if owner is None:
            raise NotFound(f"Owner '{owner_id}' not found.")
        return owner
