"""The ``voxserve`` command line. It reads Settings (environment, config file) and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from voxserve.bootstrap import Services
from voxserve.cli import local
from voxserve.cli import models as models_cli
from voxserve.cli import storage as storage_cli
from voxserve.cli.common import load_settings, run_with_services
from voxserve.cli.owners import credits_app, owner_ref, owners_app
from voxserve.cli.serve_checks import check_before_serving
from voxserve.cli.worker import worker
from voxserve.core.auth import NewKey
from voxserve.core.usage import UsageReport
from voxserve.core.voice_types import VoiceType
from voxserve.settings import Settings
from voxserve.storage.protocol import VoiceQuery

app = typer.Typer(help="voxserve: a self-hosted speech API.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
voices_app = typer.Typer(help="Browse the voice library.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(voices_app, name="voices")
app.add_typer(models_cli.app, name="models")
app.add_typer(owners_app, name="owners")
app.add_typer(credits_app, name="credits")
app.command()(local.say)
app.command()(local.transcribe)
app.command()(worker)
app.command("migrate-storage")(storage_cli.migrate_storage)


@app.callback()
def check_settings() -> None:
    # Every command reads the settings: check them once, first, for a clear error.
    load_settings()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="A TOML settings file (the environment overrides it).")
    ] = None,
) -> None:
    """Run the API server (default http://127.0.0.1:8000, docs at /docs)."""
    from voxserve.api.app import create_app
    from voxserve.api.server import serve as serve_app
    from voxserve.logs import configure_logging

    given = {"host": host, "port": port, "config": config}
    settings = load_settings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_level, json_lines=settings.log_json)
    check_before_serving(settings)
    serve_app(create_app(settings), settings)  # SIGTERM: drain, finish, close sockets 1012


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name for the key (and its new owner).")],
    owner: Annotated[
        str | None, typer.Option(help="Add the key to this existing owner (name or id).")
    ] = None,
    credits: Annotated[
        int | None,
        typer.Option(min=0, help="Credit balance of the new owner (unlimited if unset)."),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="An operator key: manages every owner and key.")
    ] = False,
) -> None:
    """Create an API key. The key is printed once, alone on the last line."""

    async def work(services: Services) -> NewKey:
        owner_id = None if owner is None else await owner_ref(services, owner)
        return await services.auth.create_key(name, owner_id=owner_id, credits=credits, admin=admin)

    new = run_with_services(Settings(), work)
    kind = "admin key" if new.key.admin else "key"
    typer.echo(f"{kind} id {new.key.id} for owner {new.owner.id} ({new.owner.name})")
    typer.echo("Store this key now; only its hash is kept:")
    typer.echo(new.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, names, owners; never the keys themselves)."""
    keys = run_with_services(Settings(), lambda s: s.auth.list_keys())
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.prefix}…  {key.name}  owner={key.owner_id}  {state}")
    if not keys:
        typer.echo("no keys (the server accepts keyless requests on loopback only)")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it answer 401 from now on."""
    run_with_services(Settings(), lambda s: s.auth.revoke_key(key_id))
    typer.echo(f"revoked {key_id}")


@voices_app.command("list")
def voices_list(
    owner: Annotated[
        str, typer.Option(help="Owner (name or id) whose custom voices to include.")
    ] = "local",
    type: Annotated[VoiceType, typer.Option(help="all, custom or preset")] = "all",
) -> None:
    """List preset voices and an owner's custom voices."""

    async def work(services: Services) -> None:
        items, total = await services.voices.list(
            await owner_ref(services, owner),
            type=type,
            query=VoiceQuery(),
            offset=0,
            limit=10_000,
        )
        for v in items:
            langs = ",".join(v.languages) or "-"
            typer.echo(f"{v.id}  {v.type:6}  {v.name}  [{langs}]  {v.gender or '-'}")
        typer.echo(f"{total} voices")

    run_with_services(Settings(), work)


DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]


@app.command()
def usage(
    owner: Annotated[
        str, typer.Option(help="Owner name or id (see `voxserve owners list`).")
    ] = "local",
    period: Annotated[Literal["day", "month"], typer.Option(help="day or month")] = "day",
    since: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="Start (inclusive), UTC.")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="End (exclusive), UTC.")
    ] = None,
    records: Annotated[int, typer.Option(min=0, help="How many recent records to show.")] = 10,
) -> None:
    """Show an owner's credit balance and usage: totals, per day or month, recent records."""
    start, end = (t.replace(tzinfo=UTC) if t else None for t in (since, until))

    async def work(services: Services) -> UsageReport:
        owner_id = await owner_ref(services, owner)
        return await services.usage.report(
            owner_id, since=start, until=end, period=period, limit=records
        )

    report = run_with_services(Settings(), work)
    for line in usage_lines(owner, report, period):
        typer.echo(line)


def usage_lines(owner: str, report: UsageReport, period: str) -> list[str]:
    balance = "unlimited" if report.balance is None else f"{report.balance} credits"
    t = report.totals
    lines = [
        f"owner {owner}: balance {balance}",
        f"total: {t.requests} requests, {t.characters} characters, "
        f"{t.audio_seconds:.1f} s audio, {t.tokens} tokens, {t.credits} credits",
        f"{period:<10}  "
        + "  ".join(f"{h:>8}" for h in ("requests", "chars", "audio_s", "tokens", "credits")),
    ]
    for p in report.periods:
        day = f"{p.period_start:%Y-%m-%d}" if period == "day" else f"{p.period_start:%Y-%m}"
        lines.append(
            f"{day:<10}  {p.requests:>8}  {p.characters:>8}  {p.audio_seconds:>8.1f}  "
            f"{p.tokens:>8}  {p.credits:>8}"
        )
    for r in report.records:
        lines.append(
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.endpoint:<13}  {r.engine or '-':<14}  "
            f"{r.status}  chars={r.characters} audio={r.audio_seconds:.1f}s "
            f"tokens={r.tokens} credits={r.credits}"
        )
    return lines


if __name__ == "__main__":
    app()
