"""API keys and owners over HTTP (the web app's Keys page uses these, as can any client):
``/v1/keys`` for the caller's own keys, ``/v1/owners`` for operators (admin keys)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from voxserve.api.deps import AuthServiceDep, CurrentAdmin, CurrentPrincipal
from voxserve.core.auth import Principal
from voxserve.core.ids import iso
from voxserve.core.types import ApiKey, Owner
from voxserve.errors import Forbidden

router = APIRouter(tags=["keys"])


class KeyInfo(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    owner_id: str
    name: str
    prefix: str
    """The key's first characters, to tell keys apart (the key itself is never shown again)."""
    admin: bool
    created_at: str
    revoked_at: str | None


class KeyList(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    data: list[KeyInfo]
    """Oldest first, revoked keys included."""


class NewKeyInfo(KeyInfo):
    secret: str
    """The key: shown in this answer only."""


class KeyCreateRequest(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True, json_schema_extra={"examples": [{"name": "laptop"}]}
    )

    name: str = Field(min_length=1, max_length=200)
    owner_id: str | None = Field(None, max_length=64)
    """Operators only: make the key for this owner (default: the caller)."""
    admin: bool = False
    """Operators only: an admin key."""


class OwnerInfo(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    name: str
    credits: int | None
    """The balance; null is unlimited."""
    created_at: str


class OwnerList(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    data: list[OwnerInfo]
    """Oldest first."""


class OwnerCreateRequest(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"name": "team-a", "credits": 100000}]},
    )

    name: str = Field(min_length=1, max_length=200)
    credits: int | None = Field(None, ge=0, le=10**15)
    """Starting balance; null (the default) is unlimited."""


class CreditsRequest(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True, json_schema_extra={"examples": [{"amount": 5000}]}
    )

    amount: int = Field(ge=-(10**15), le=10**15)
    """Credits to add (negative takes them away, never below 0)."""


def key_info(key: ApiKey) -> KeyInfo:
    revoked = iso(key.revoked_at) if key.revoked_at else None
    return KeyInfo(
        id=key.id,
        owner_id=key.owner_id,
        name=key.name,
        prefix=key.prefix,
        admin=key.admin,
        created_at=iso(key.created_at),
        revoked_at=revoked,
    )


def owner_info(owner: Owner) -> OwnerInfo:
    return OwnerInfo(
        id=owner.id, name=owner.name, credits=owner.credits, created_at=iso(owner.created_at)
    )


@router.get("/v1/keys", response_model=KeyList)
async def list_keys(principal: CurrentPrincipal, auth: AuthServiceDep) -> KeyList:
    """The caller's keys, revoked ones too (an operator sees every owner's)."""
    owner_id = None if principal.admin else principal.owner.id
    return KeyList(data=[key_info(k) for k in await auth.list_keys(owner_id=owner_id)])


@router.post("/v1/keys", response_model=NewKeyInfo)
async def create_key(
    body: KeyCreateRequest, principal: CurrentPrincipal, auth: AuthServiceDep
) -> NewKeyInfo:
    """A new key for the caller (or, for an operator, for any owner); the secret is in this
    answer only. Creating the first key ends keyless mode."""
    wants_more = body.admin or (body.owner_id not in (None, principal.owner.id))
    if wants_more:
        require_admin(principal)
    owner_id = body.owner_id or principal.owner.id
    new = await auth.create_key(body.name, owner_id=owner_id, admin=body.admin)
    return NewKeyInfo(**key_info(new.key).model_dump(), secret=new.secret)


@router.delete("/v1/keys/{key_id}", response_model=KeyInfo)
async def revoke_key(key_id: str, principal: CurrentPrincipal, auth: AuthServiceDep) -> KeyInfo:
    """Revoke a key (the caller's own; an operator's any): requests and web sessions with it
    are refused from now on."""
    owner_id = None if principal.admin else principal.owner.id
    await auth.revoke_key(key_id, owner_id=owner_id)
    keys = await auth.list_keys(owner_id=owner_id)
    return key_info(next(k for k in keys if k.id == key_id))


@router.get("/v1/owners", response_model=OwnerList)
async def list_owners(_: CurrentAdmin, auth: AuthServiceDep) -> OwnerList:
    """Every owner with their balance (operators only)."""
    return OwnerList(data=[owner_info(o) for o in await auth.list_owners()])


@router.post("/v1/owners", response_model=OwnerInfo)
async def create_owner(
    body: OwnerCreateRequest, _: CurrentAdmin, auth: AuthServiceDep
) -> OwnerInfo:
    """A new owner (operators only); give them a key with ``POST /v1/keys``."""
    return owner_info(await auth.create_owner(body.name, body.credits))


@router.post("/v1/owners/{owner_id}/credits", response_model=OwnerInfo)
async def add_credits(
    owner_id: str, body: CreditsRequest, _: CurrentAdmin, auth: AuthServiceDep
) -> OwnerInfo:
    """Add credits to an owner's balance (operators only)."""
    return owner_info(await auth.add_credits(owner_id, body.amount))


def require_admin(principal: Principal) -> None:
    """Raises Forbidden unless ``principal`` is an operator."""
    if not principal.admin:
        raise Forbidden("Only an admin key may create keys for others or admin keys.")
