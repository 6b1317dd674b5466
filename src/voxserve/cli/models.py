"""``voxserve models``: list, pull and remove models in the models folder, and offer the
recommended ones (``recommend``, which ``scripts/serve`` runs on every start)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from voxserve.errors import VoxError
from voxserve.models.catalog import CatalogEntry, find, list_models
from voxserve.models.layout import remove
from voxserve.models.pull import HubOptions, pull
from voxserve.models.starter import (
    STARTER_MODELS,
    StarterPlan,
    forget_declined,
    plan,
    remember_declined,
)
from voxserve.settings import Settings

app = typer.Typer(help="Manage the models folder (VOXSERVE_MODELS_DIR).", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """Installed and known models, with size and licence."""
    folder = Settings().resolved_models_dir
    table = Table(title=f"models in {folder}")
    for column in ("name", "kind", "engine", "installed", "size", "licence"):
        table.add_column(column, no_wrap=True)
    for row in list_models(folder):
        size = f"{row.size_bytes / 1e6:,.0f} MB" if row.size_bytes else "?"
        table.add_row(
            row.name, row.kind, row.engine, "yes" if row.installed else "", size, row.licence or ""
        )
    Console(width=140).print(table)


@app.command("pull")
def pull_command(
    name: str,
    force: Annotated[bool, typer.Option(help="Download again even when present.")] = False,
    offline: Annotated[
        bool, typer.Option(help="Use the Hugging Face cache only (like HF_HUB_OFFLINE=1).")
    ] = False,
) -> None:
    """Download a known model from the Hugging Face hub (through its cache; checksummed).

    HF_TOKEN authorises gated models, HF_ENDPOINT (or VOXSERVE_HUB_URL) names a mirror, and a
    model already in the Hugging Face cache is linked into the models folder, not downloaded."""
    entry = find(name)
    if entry is None:
        typer.echo(f"error: unknown model '{name}'; see `voxserve models list`", err=True)
        raise typer.Exit(1)
    if not install(entry, force=force, hub=HubOptions(offline=offline)):
        raise typer.Exit(1)


def install(entry: CatalogEntry, *, force: bool = False, hub: HubOptions | None = None) -> bool:
    """Pull ``entry`` into the models folder with a progress bar; False (reported) on failure."""
    folder = Settings().resolved_models_dir
    with Progress(
        "{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn()
    ) as bar:
        tasks: dict[str, object] = {}

        def on_progress(dest: str, done: int, total: int | None) -> None:
            if dest not in tasks:
                tasks[dest] = bar.add_task(dest, total=total)
            bar.update(tasks[dest], completed=done, total=total)  # type: ignore[arg-type]

        try:
            installed = pull(entry, folder, hub=hub, on_progress=on_progress, force=force)
        except VoxError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            return False
    typer.echo(f"installed {installed.name} in {installed.path}")
    if entry.extra:
        typer.echo(f"this model needs: pip install 'voxserve[{entry.extra}]'")
    return True


@app.command("rm")
def rm_command(name: str) -> None:
    """Remove an installed model."""
    try:
        removed = remove(Settings().resolved_models_dir, name)
    except VoxError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"removed {removed.name} ({removed.size_bytes / 1e6:,.0f} MB)")


@app.command("recommend")
def recommend_command(
    if_missing: Annotated[
        bool,
        typer.Option(help="Say nothing when they are installed, remember a no (scripts/serve)."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Pull without asking (VOXSERVE_PULL_RECOMMENDED=1).")
    ] = False,
) -> None:
    """Offer the recommended models (a Piper voice and faster-whisper base) when missing.

    Pulled only when the hub answers; with no hub the server starts on its built-in engines."""
    settings = Settings()
    folder = settings.resolved_models_dir
    want = True if yes else settings.pull_recommended
    if want is False:
        if not if_missing:
            typer.echo("VOXSERVE_PULL_RECOMMENDED is false: not offering the recommended models.")
        return
    if want:
        forget_declined(folder)
    decision = plan(folder, HubOptions())
    names = ", ".join(entry.name for entry in decision.missing)
    if decision.outcome in ("present", "declined"):
        if not if_missing:
            typer.echo(f"recommended models: {', '.join(STARTER_MODELS)} ({decision.outcome})")
        return
    if decision.outcome == "unreachable":
        typer.echo(
            f"The model hub ({HubOptions().endpoint}) is not reachable: starting with the "
            f"built-in engines (espeak, pocketsphinx). Later: voxserve models pull NAME ({names})."
        )
        return
    if decision.outcome == "offer" and not _accepts(decision, want, remember=if_missing):
        return
    offline = decision.outcome == "from-cache"
    failed = [e.name for e in decision.missing if not install(e, hub=HubOptions(offline=offline))]
    if failed and not if_missing:
        raise typer.Exit(1)


def _accepts(decision: StarterPlan, want: bool | None, *, remember: bool) -> bool:
    """Whether to pull: as configured, else asked on a terminal (default yes)."""
    names = ", ".join(entry.name for entry in decision.missing)
    size = f"about {decision.download_bytes / 1e6:,.0f} MB"
    if want is None and not interactive():
        typer.echo(
            f"Recommended models not installed ({names}, {size}); to pull them: "
            "VOXSERVE_PULL_RECOMMENDED=1 scripts/serve, or voxserve models recommend --yes."
        )
        return False
    if want is None:
        want = typer.confirm(f"Download the recommended models ({names}, {size})?", default=True)
    if not want:
        if remember:
            remember_declined(Settings().resolved_models_dir)
        typer.echo("Not pulling them; voxserve models recommend --yes pulls them later.")
    return want


def interactive() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()
