"""What every ``voxserve`` command shares: open the services for one piece of work and turn a
``VoxError`` into a message and exit code. The command modules import this, never each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from voxserve.bootstrap import Services, open_services
from voxserve.errors import VoxError
from voxserve.settings import Settings

T = TypeVar("T")


def run_with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services (storage, engines), run ``work``, close them.

    Raises:
        typer.Exit: code 1 after printing the message of a ``VoxError``.
    """

    async def main() -> T:
        async with open_services(settings) as services:
            return await work(services)

    try:
        return asyncio.run(main())
    except VoxError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
