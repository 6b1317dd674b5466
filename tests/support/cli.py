"""Running a ``voxserve`` command in the test process."""

from __future__ import annotations

import logging

from click.testing import Result
from typer.testing import CliRunner

from voxserve.cli.main import app as cli


def invoke_keeping_logging(arguments: list[str]) -> Result:
    """The command's result; the root logger's handlers and level are put back afterwards (the
    command logs to the runner's stderr, which is closed once it returns)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(cli, arguments)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
