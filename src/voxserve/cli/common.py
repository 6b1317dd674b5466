"""What every ``voxserve`` command shares: read the settings, open the services for one piece of
work and turn a ``VoxError`` into a message and exit code. The command modules import this,
never each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from voxserve.bootstrap import Services, open_services
from voxserve.config_file import ConfigFileError, describe_error
from voxserve.errors import VoxError
from voxserve.settings import Settings

T = TypeVar("T")


def load_settings(**overrides: Any) -> Settings:
    """The settings, or (a bad value, a broken config file) one line per problem on stderr
    and exit code 2, never a traceback."""
    try:
        return Settings(**overrides)
    except (ValidationError, SettingsError, ConfigFileError) as exc:
        for line in describe_error(exc):
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None


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
