"""``voxserve say`` and ``voxserve transcribe``: the same core as the server, without a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from voxserve.audio.types import AUDIO_FORMATS
from voxserve.bootstrap import Services
from voxserve.cli.common import run_with_services
from voxserve.core.auth import LOCAL_OWNER_ID
from voxserve.core.speech import SpeechRequest
from voxserve.core.subtitles import to_srt, to_vtt
from voxserve.core.transcription import AudioSource, TranscriptionRequest, join_text
from voxserve.settings import Settings

FORMATS = list(AUDIO_FORMATS)


def say(
    text: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="Audio file to write.")],
    voice: Annotated[
        str | None,
        typer.Option(help="Voice id (default: the engine's best English voice, else its first)."),
    ] = None,
    format: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(FORMATS)}; default from -o.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Engine name (default: the best installed).")
    ] = None,
    speed: Annotated[float, typer.Option(min=0.25, max=4.0)] = 1.0,
) -> None:
    """Speak TEXT into a file."""
    fmt = format or output.suffix.lstrip(".").lower() or "wav"
    if fmt not in FORMATS:
        typer.echo(f"error: unknown format '{fmt}'; use one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)

    async def work(services: Services) -> bytes:
        await services.storage.keys.get_or_create_owner(LOCAL_OWNER_ID, "local")
        voice_id = voice or services.speech.default_voice(model)
        request = SpeechRequest(LOCAL_OWNER_ID, text, model=model, voice_id=voice_id, speed=speed)
        prepared = await services.speech.prepare(request)
        return await services.speech.synthesize(prepared, fmt)

    output.write_bytes(run_with_services(Settings(), work))
    typer.echo(f"wrote {output}")


def transcribe(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    format: Annotated[str, typer.Option(help="json, text, srt or vtt")] = "text",
    language: Annotated[str | None, typer.Option(help="ISO-639-1 code (default: detect)")] = None,
    model: Annotated[
        str | None, typer.Option(help="Engine name (default: the best installed).")
    ] = None,
) -> None:
    """Transcribe FILE and print the transcript."""
    if format not in ("json", "text", "srt", "vtt"):
        raise typer.BadParameter("format must be json, text, srt or vtt")

    async def work(services: Services) -> str:
        await services.storage.keys.get_or_create_owner(LOCAL_OWNER_ID, "local")
        request = TranscriptionRequest(
            LOCAL_OWNER_ID,
            AudioSource(data=file.read_bytes()),
            model=model,
            language=language,
            word_timestamps=format == "json",
        )
        prepared = await services.transcription.prepare(request)
        info, stream = await services.transcription.stream(prepared, "cli-transcription")
        segments = []
        with Progress(transient=True) as bar:
            task = bar.add_task(file.name, total=max(info.duration, 0.01))
            async for segment in stream:
                segments.append(segment)
                bar.update(task, completed=segment.end)
        if format == "srt":
            return to_srt(segments)
        if format == "vtt":
            return to_vtt(segments)
        text = join_text(segments)
        if format == "text":
            return text
        body = {
            "text": text,
            "language": info.language,
            "duration": info.duration,
            "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in segments],
        }
        return json.dumps(body, indent=2, ensure_ascii=False)

    typer.echo(run_with_services(Settings(), work))
