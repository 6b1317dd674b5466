"""API keys and owners: create, list and revoke keys; turn a presented key into its owner."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from voxserve.errors import NotFound, Unauthorized
from voxserve.storage.protocol import ApiKey, KeyRepository, Owner

LOCAL_OWNER_ID = "local"
"""The owner every request runs as when no key exists and the server is bound to loopback."""
KEY_PREFIX = "vx-"


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    owner: Owner
    secret: str
    """The key itself: shown once, never stored."""


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
    ) -> None:
        """Args:
        keys: the key repository.
        open_when_keyless: with no active key, run requests as the local owner (loopback only).
        reopen_after_revocation: keyless mode may come back once every key was revoked (the
            operator's explicit choice); off, a server that ever had a key always needs one.
        """
        self._keys = keys
        self._open_when_keyless = open_when_keyless
        self._reopen_after_revocation = reopen_after_revocation

    async def create_key(
        self, name: str, *, owner_id: str | None = None, credits: int | None = None
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
        key = await self._keys.create_key(owner.id, name, hash_key(secret), secret[:8])
        return NewKey(key=key, owner=owner, secret=secret)

    async def list_keys(self) -> list[ApiKey]:
        return await self._keys.list_keys()

    async def revoke_key(self, key_id: str) -> None:
        """Raises NotFound when no active key has this id."""
        if not await self._keys.revoke_key(key_id):
            raise NotFound(f"Key '{key_id}' not found.")

    async def keyless(self) -> bool:
        """No key is needed: none is active, and none ever existed (unless the operator lets
        keyless mode come back after revoking every key)."""
        if await self._keys.count_active_keys():
            return False
        return self._reopen_after_revocation or not await self._keys.ever_created()

    async def authenticate(self, secret: str | None) -> Owner:
        """The owner of a presented key (or the local owner in keyless loopback mode).

        Raises:
            Unauthorized: no key, or a wrong or revoked one.
        """
        if secret:
            found = await self._keys.find_by_hash(hash_key(secret))
            if found is not None:
                return found[1]
            if await self._keys.is_revoked(hash_key(secret)):
                raise Unauthorized("This API key was revoked.")
        # Keyless loopback mode takes any key too: SDKs such as openai insist on sending one.
        if self._open_when_keyless and await self.keyless():
            # A plain read first: the upsert takes the write lock, needed only the first time.
            owner = await self._keys.get_owner(LOCAL_OWNER_ID)
            return owner or await self._keys.get_or_create_owner(LOCAL_OWNER_ID, "local")
        if secret:
            raise Unauthorized("Invalid API key.")
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
        )
