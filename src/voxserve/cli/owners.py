"""``voxserve owners`` and ``voxserve credits``: the operator's tools for owners and balances.
Wherever a command takes an owner, it takes a name or an id (``owner_ref``)."""

from __future__ import annotations

from typing import Annotated

import typer

from voxserve.bootstrap import Services
from voxserve.cli.common import run_with_services
from voxserve.core.auth import LOCAL_OWNER_ID
from voxserve.errors import NotFound
from voxserve.settings import Settings

owners_app = typer.Typer(help="Manage owners (who keys, voices and credits belong to).")
credits_app = typer.Typer(help="Manage credit balances.", no_args_is_help=True)


async def owner_ref(services: Services, name_or_id: str) -> str:
    """The id of the owner with this id or (unique) name; ``local`` stays ``local`` even before
    the local owner exists.

    Raises:
        NotFound, Conflict: no such owner, or several with this name.
    """
    try:
        return (await services.auth.find_owner(name_or_id)).id
    except NotFound:
        if name_or_id == LOCAL_OWNER_ID:
            return LOCAL_OWNER_ID
        raise


def balance(credits: int | None) -> str:
    return "unlimited" if credits is None else f"{credits} credits"


@owners_app.command("list")
def owners_list() -> None:
    """List owners with their balances."""
    for owner in run_with_services(Settings(), lambda s: s.auth.list_owners()):
        typer.echo(f"{owner.id}  {owner.name}  {balance(owner.credits)}")


@owners_app.command("create")
def owners_create(
    name: str,
    credits: Annotated[
        int | None, typer.Option(min=0, help="Starting balance (unlimited if unset).")
    ] = None,
) -> None:
    """Create an owner (give them a key with ``voxserve keys create --owner NAME``)."""
    owner = run_with_services(Settings(), lambda s: s.auth.create_owner(name, credits))
    typer.echo(f"owner {owner.id} ({owner.name}): {balance(owner.credits)}")


@credits_app.command("add")
def credits_add(
    owner: Annotated[str, typer.Argument(help="Owner name or id.")],
    amount: Annotated[int, typer.Argument(help="Credits to add (negative takes them away).")],
) -> None:
    """Add credits to an owner's balance (an unlimited owner starts a balance of AMOUNT)."""

    async def work(services: Services) -> str:
        updated = await services.auth.add_credits(await owner_ref(services, owner), amount)
        return f"owner {updated.id} ({updated.name}): {balance(updated.credits)}"

    typer.echo(run_with_services(Settings(), work))
