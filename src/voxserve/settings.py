"""voxserve settings: one ``Settings`` object, built once by the CLI or by ``create_app``.

Every field can be set from the environment with the ``VOXSERVE_`` prefix; nested sections use a
double underscore, e.g. ``VOXSERVE_LIMITS__MAX_CUSTOM_VOICES=50``; and from a TOML file
(``VOXSERVE_CONFIG``), which the environment overrides (``voxserve.config_file``). Every setting
is listed in docs/settings.md, generated from the attribute docstrings here
(``scripts/settings_docs``).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from voxserve.config_file import (
    config_path,
    read_config_file,
    unknown_keys,
    unknown_variables,
)


class LimitSettings(BaseModel):
    """Per-owner and per-request limits."""

    max_custom_voices: int = Field(20, ge=1)
    """Custom voices one owner may hold, counted over every API shape."""
    sample_min_seconds: float = Field(2.0, gt=0)
    """Voice samples shorter than this are refused (422)."""
    sample_max_seconds: float = Field(30.0, gt=0)
    """Voice samples longer than this are trimmed; ``trimmed_seconds`` says by how much."""
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """JSON and form bodies larger than this answer 413."""
    max_upload_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    """Multipart uploads (audio files for transcription, files API) larger than this answer 413."""
    speech_max_characters: int = Field(5000, ge=1)
    """Longest speech ``input`` accepted (422 beyond)."""
    max_audio_seconds: float = Field(4 * 3600.0, gt=0)
    """Longest audio accepted for transcription."""
    chat_max_tokens: int = Field(4096, ge=1)
    """Most tokens one chat answer may take: a larger ``max_tokens`` answers 422, and without
    one the answer stops here or at the end of the model's context, whichever comes first."""
    transcription_window_seconds: float = Field(600.0, ge=30)
    """Longer audio is decoded and transcribed one window at a time (bounded memory)."""


class DecodeSettings(BaseModel):
    """Decoding uploaded and fetched audio: threads of its own, bounded, so a costly file (hours
    of silence in a few MB) can never starve other requests."""

    workers: int = Field(2, ge=1)
    """Decodes that run at once (on the decode pool's threads, never the engines')."""
    queue: int = Field(32, ge=0)
    """Decodes that may wait for a thread before new ones answer 429."""
    retry_after_seconds: int = Field(2, ge=1)
    """``Retry-After`` sent with that 429."""


class EngineSettings(BaseModel):
    """Which engines serve requests, and how many requests each runs at once."""

    default_tts: str | None = None
    """Engine used when a request names a hosted model (``tts-1``, ``voxtral-mini-tts-latest``) or
    none. Unset: the best installed engine."""
    default_stt: str | None = None
    """Transcription engine for hosted model names (``whisper-1``, ``voxtral-mini-latest``)."""
    default_chat: str | None = None
    """Chat engine for hosted chat model names (``voxtral-small-latest``, ``gpt-4o``)."""
    max_queue: int = Field(16, ge=0)
    """Requests that may wait for a busy engine before new ones answer 429."""
    retry_after_seconds: int = Field(1, ge=1)
    """``Retry-After`` sent with a 429 when an engine's queue is full."""
    idle_unload_seconds: float = Field(600.0, ge=0)
    """Engines unused this long are unloaded (0 keeps them loaded)."""
    concurrency: dict[str, int] = Field(default_factory=dict)
    """Per-engine concurrency overrides, e.g. ``{"piper": 2}``."""
    preload: list[str] = Field(default_factory=list)
    """Engines to load as the server starts (in the background) instead of on first use, e.g.
    ``["piper", "faster-whisper-base"]``. A remote speech engine is always loaded then: loading
    it asks the remote for its voices, so they are listed from the start."""
    voice_aliases: dict[str, str] = Field(default_factory=dict)
    """Extra hosted-voice aliases, e.g. ``{"alloy": "piper:en_US-joe-medium"}``; they override the
    built-in alias table."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where local engines run: ``auto`` (CUDA when a GPU is seen, else the CPU; an engine that
    fails to load on CUDA falls back to the CPU), ``cpu`` or ``cuda`` (never falls back).
    Engines whose library runs on the CPU only (Piper, espeak, Pocket TTS) stay there."""
    devices: dict[str, Literal["auto", "cpu", "cuda"]] = Field(default_factory=dict)
    """Per-engine device, by engine name or family, e.g. ``{"faster-whisper": "cuda",
    "faster-whisper-tiny.en": "cpu", "llama-cpp": "cpu"}``; overrides ``device``."""
    compute_types: dict[str, str] = Field(default_factory=dict)
    """Per-engine CTranslate2 compute type, by engine name or family, e.g.
    ``{"faster-whisper": "int8_float16"}`` (default ``int8`` on the CPU, ``float16`` on CUDA)."""
    models_rescan_seconds: float = Field(2.0, ge=0)
    """How often the models folder is looked at for models pulled, copied or removed while the
    server runs (a few ``stat`` calls; 0: read it at start only)."""

    @model_validator(mode="after")
    def _check_devices(self) -> EngineSettings:
        if self.devices.get("pocket-tts") == "cuda":
            raise ValueError(
                "engines.devices: pocket-tts runs on the CPU only (its library places the model "
                "there); leave it out or set it to cpu"
            )
        return self

    def device_for(self, name: str, family: str) -> Literal["auto", "cpu", "cuda"]:
        """The device for engine ``name`` of ``family``: its own entry, its family's, the
        global ``device``."""
        return self.devices.get(name) or self.devices.get(family) or self.device

    def compute_type_for(self, name: str, family: str) -> str | None:
        """The compute type set for engine ``name`` or its family (None: the device's default)."""
        return self.compute_types.get(name) or self.compute_types.get(family)


class RemoteBackend(BaseModel):
    """One server of a pool (an entry of a ``*_url`` list)."""

    url: str
    """Base URL, e.g. ``http://gpu1:8000/v1``."""
    capacity: int = Field(4, ge=1)
    """Requests this server runs at once; more go to other servers or wait."""
    api_key: str | None = Field(None, repr=False)
    """Bearer key for this server (default: ``remote.api_key``); kept out of reprs and logs."""


RemoteKind = Literal["tts", "stt", "chat"]
RemoteURLs = str | list[str | RemoteBackend] | None
"""A single base URL, or a pool: a list of URLs or of ``{url, capacity, api_key}`` objects."""


class RemoteSettings(BaseModel):
    """OpenAI-compatible servers that voxserve forwards to (vLLM, vLLM-Omni, llama.cpp, Ollama).

    Each ``*_url`` takes one base URL, or a JSON list of them (or of ``{url, capacity,
    api_key}`` objects) for a pool: requests go to the server with the fewest in flight, a
    failing server leaves the pool until its health check passes again, and a refused
    connection or a 503 is retried once on another server."""

    tts_url: RemoteURLs = None
    """Base URL (``http://gpu:8000/v1``) of a remote ``/audio/speech`` server, or a pool of them
    (``["http://gpu1:8000/v1", {"url": "http://gpu2:8000/v1", "capacity": 8}]``)."""
    tts_model: str | None = None
    """Model name sent to the remote speech server."""
    tts_voices: list[str] = Field(default_factory=list)
    """Voice names to offer when the remote server cannot list its voices."""
    tts_languages: list[str] = Field(default_factory=list)
    """Languages the remote speech server speaks (ISO codes), listed with its voices."""
    tts_cloning: bool = False
    """The remote speech server clones from ``ref_audio`` (vLLM-Omni serving Voxtral does)."""
    tts_sample_rate: int = Field(24000, gt=0)
    """Rate of the remote server's 16-bit ``pcm`` output."""
    stt_url: RemoteURLs = None
    """Base URL of a remote ``/audio/transcriptions`` server, or a pool of them."""
    stt_model: str | None = None
    """Model name sent to the remote transcription server."""
    stt_diarization: bool = False
    """The remote transcription server diarizes (OpenAI's ``diarized_json``, e.g. model
    ``gpt-4o-transcribe-diarize``): ``diarize=true`` is passed on to it."""
    stt_realtime: bool = False
    """The remote STT servers have vLLM's ``/v1/realtime`` WebSocket (vLLM serving Voxtral
    Realtime): realtime transcription sessions are forwarded to it, one server per session,
    instead of decoding a growing window over ``/audio/transcriptions``."""
    chat_url: RemoteURLs = None
    """Base URL of a remote ``/chat/completions`` server, or a pool of them."""
    chat_model: str | None = None
    """Model name sent to the remote chat server."""
    chat_context_length: int = Field(32768, gt=0)
    """Context window of the remote chat model (to refuse over-long conversations early)."""
    chat_audio_native: bool = False
    """The remote chat model takes audio parts itself (e.g. Voxtral on vLLM): pass them through."""
    api_key: str | None = Field(None, repr=False)
    """Bearer key sent to the remote servers."""
    timeout_seconds: float = Field(300.0, gt=0)
    """Longest wait for a remote server's answer."""
    health_interval_seconds: float = Field(10.0, gt=0)
    """How often each server of a pool is checked (``GET {url}/models``)."""
    health_timeout_seconds: float = Field(2.0, gt=0)
    """A health check slower than this counts as a failure."""

    @field_validator("tts_url", "stt_url", "chat_url", mode="before")
    @classmethod
    def _decode_pool(cls, value: object) -> object:
        # A JSON list in a plain string (a config file, a constructor) is a pool too.
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("neither a URL nor a JSON list of them") from None
        if isinstance(value, list) and not value:
            raise ValueError("a pool needs at least one server")
        return value

    def backends(self, kind: RemoteKind) -> list[RemoteBackend] | None:
        """The pool configured for ``kind``: None for no URL or a single URL string (one plain
        remote engine, as before pools), else one ``RemoteBackend`` per entry."""
        value = {"tts": self.tts_url, "stt": self.stt_url, "chat": self.chat_url}[kind]
        if value is None or isinstance(value, str):
            return None
        return [
            RemoteBackend(url=entry)
            if isinstance(entry, str)
            else RemoteBackend.model_validate(entry)
            for entry in value
        ]


class FetchSettings(BaseModel):
    """Safety rules for fetching user-supplied URLs (``file_url``, ``voice_url``, chat audio)."""

    allow_private_addresses: bool = False
    """Allow loopback, RFC 1918, carrier-grade NAT and unique-local targets (for tests and closed
    networks only); shorthand for listing those ranges in ``private_networks``."""
    private_networks: list[str] = Field(default_factory=list)
    """Non-public CIDR ranges that may be fetched from, e.g. ``["10.1.0.0/16"]``. Link-local and
    cloud metadata addresses (``169.254.169.254``) are refused even when listed."""

    @model_validator(mode="after")
    def _check_networks(self) -> FetchSettings:
        for value in self.private_networks:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(f"fetch.private_networks: {value!r} is not a CIDR range") from None
        return self

    max_bytes: int = Field(100 * 1024 * 1024, ge=1)
    """Largest download taken from a user-given URL (413 beyond)."""
    timeout_seconds: float = Field(30.0, gt=0)
    """Longest a download from a user-given URL may take."""
    max_redirects: int = Field(3, ge=0)
    """Redirects followed (each target checked by the same rules)."""


class RetentionSettings(BaseModel):
    """How long deleted and generated things are kept."""

    deleted_voice_days: float = Field(30.0, ge=0)
    """Soft-deleted voices keep their sample this long before the cleanup purges it."""
    generated_audio_hours: float = Field(24.0, ge=0)
    """Stored generations (``audio_url`` of the /api/tts gateway) live this long."""
    cleanup_interval_seconds: float = Field(300.0, gt=0)
    """How often the cleanup runs (purges, expired generations, orphan blobs)."""
    orphan_grace_seconds: float = Field(3600.0, ge=0)
    """Blobs without a row older than this are removed by the cleanup."""


class WebSettings(BaseModel):
    """The web app at ``/`` and the rules for browsers (sessions, CORS)."""

    enabled: bool = True
    """Serve the web app (pages at ``/``, sign-in at ``/web/session``)."""
    session_hours: float = Field(168.0, gt=0)
    """A web session ends this long after sign-in."""
    cors_origins: list[str] = Field(default_factory=list)
    """Other web apps (``https://app.example``) whose pages may call this API with an API key.
    Empty (the default): no CORS headers, browsers keep other sites out."""


class RealtimeSettings(BaseModel):
    """Realtime WebSocket sessions (transcription and speech)."""

    max_sessions: int = Field(16, ge=1)
    """Open sessions the whole server takes; one more is refused at the handshake (429)."""
    max_sessions_per_owner: int = Field(4, ge=1)
    """Open sessions one owner may have at once (429 beyond)."""
    idle_timeout_seconds: float = Field(30.0, gt=0)
    """A transcription session that gets no audio for this long ends with an ``error`` event."""
    max_message_bytes: int = Field(1_048_576, ge=1024)
    """Largest client message taken; a bigger one gets an ``error`` event."""
    max_audio_chunk_bytes: int = Field(262_144, ge=1024)
    """Most decoded audio bytes in one ``input_audio.append`` (Mistral's documented limit)."""
    client_token_max_ttl_seconds: int = Field(3600, ge=1)
    """Longest lifetime a browser token (``POST /v1/client/sessions``) may ask for."""


class BatchSettings(BaseModel):
    """Batch jobs (Mistral's ``/v1/batch/jobs``): run by workers on a job queue in PostgreSQL
    (procrastinate). On SQLite the batch routes answer 400."""

    run_in_serve: bool | None = None
    """Run a batch worker inside ``voxserve serve``. Unset: on when the database is PostgreSQL.
    Off, batch jobs wait for a ``voxserve worker`` process."""
    concurrency: int = Field(1, ge=1)
    """Batch jobs one worker runs at once (each runs its requests one after another)."""
    max_requests: int = Field(10_000, ge=1)
    """Most requests one batch job may hold (400 beyond)."""
    max_timeout_hours: int = Field(168, ge=1)
    """Longest ``timeout_hours`` a job may ask for."""
    heartbeat_seconds: float = Field(10.0, gt=0)
    """How often a worker tells the queue it is alive."""
    stalled_after_seconds: float = Field(30.0, gt=0)
    """A running job whose worker sent no heartbeat for this long (killed, lost) is run again
    by another worker, from its first request without an outcome."""
    abort_poll_seconds: float = Field(2.0, gt=0)
    """How often a worker checks for cancelled jobs (notifications usually come sooner)."""
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    """On shutdown, how long a worker lets the running request finish before it stops; the job
    goes back to the queue and resumes where it stopped."""
    lost_job_check_seconds: float = Field(60.0, gt=0)
    """At start and this often, a worker queues again every queued or running job older than
    this that the job queue does not hold (its server died between storing and queueing it)."""
    prune_after_hours: int = Field(72, ge=0)
    """Every hour, the job queue's rows of cancelled, aborted and failed runs older than this
    are deleted (procrastinate's ``remove_old_jobs``; batch jobs themselves are kept until a
    client deletes them)."""


class BlobSettings(BaseModel):
    """Where blobs (voice samples, uploaded files, generated audio) are stored: the local folder
    (``blob_dir``) by default, or an S3 bucket shared by every replica."""

    url: str | None = None
    """``s3://bucket/prefix`` to keep blobs in S3 or an S3-compatible store (MinIO, Ceph, R2);
    unset: the local folder ``blob_dir``. Credentials come from the standard AWS variables and
    files (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``~/.aws/credentials``, instance roles)."""
    endpoint_url: str | None = None
    """The S3 API's URL for S3-compatible stores, e.g. ``http://minio:9000``; unset: AWS."""
    region: str | None = None
    """The bucket's region, e.g. ``eu-west-1``; unset: the AWS configuration's own."""
    path_style: bool | None = None
    """Address buckets as ``endpoint/bucket`` rather than ``bucket.endpoint``; unset: path style
    when ``endpoint_url`` is set (what MinIO and most S3-compatible stores expect)."""

    @model_validator(mode="after")
    def _check_url(self) -> BlobSettings:
        if self.url is not None and not self.url.startswith("s3://"):
            raise ValueError(f"blobs.url: {self.url!r} is not an s3://bucket/prefix URL")
        if self.url is not None and not self.url[len("s3://") :].split("/", 1)[0]:
            raise ValueError(f"blobs.url: {self.url!r} names no bucket")
        return self


class MetricsSettings(BaseModel):
    """Prometheus metrics at ``/metrics``."""

    enabled: bool = True
    """Serve ``GET /metrics`` and count requests (an admin key scrapes it, except in keyless
    loopback mode)."""


class OtelSettings(BaseModel):
    """OpenTelemetry traces, sent over OTLP/HTTP when an endpoint is set."""

    endpoint: str | None = None
    """OTLP/HTTP collector base URL (``http://collector:4318``); traces go to
    ``<endpoint>/v1/traces``. Unset: the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) when set, else no tracing."""
    service_name: str = "voxserve"
    """The ``service.name`` resource attribute of every span."""


def _default_data_dir() -> Path:
    """The platform's user data folder (``~/.local/share/voxserve`` on Linux)."""
    return Path(platformdirs.user_data_dir("voxserve", appauthor=False))


class DiarizationSettings(BaseModel):
    """Speaker diarization (``diarize=true``; the ``diarize`` extra installs the senko engine)."""

    enabled: bool = True
    """Serve diarization with the local engine when senko is installed; ``false`` leaves it to
    a remote transcription server that diarizes."""
    match_threshold: float = Field(0.7, ge=-1.0, le=1.0)
    """Cosine similarity a speaker's voice needs with a ``speaker_references`` clip to take its
    name; below it the speaker stays anonymous (``speaker_N``). With senko's CAM++ voice prints,
    the same LibriSpeech speaker scores 0.83-0.90 and different ones at most 0.62."""
    max_queue: int = Field(8, ge=0)
    """Diarizations waiting for the engine; more answer 429."""


class Settings(BaseSettings):
    """All of voxserve's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="VOXSERVE_", env_nested_delimiter="__", extra="ignore"
    )

    config: Path | None = None
    """A TOML file of settings (``VOXSERVE_CONFIG``, or ``voxserve serve --config``); the
    environment overrides it, key by key."""
    data_dir: Path = Field(default_factory=_default_data_dir)
    """Where the SQLite database, blobs and secrets live."""
    database_url: str | None = Field(None, repr=False)
    """SQLAlchemy async URL; default ``sqlite+aiosqlite:///<data_dir>/voxserve.db``.
    PostgreSQL: ``postgresql+asyncpg://user:pass@host/db``."""
    models_dir: Path | None = None
    """The models folder (``<data_dir>/models`` when unset)."""
    pull_recommended: bool | None = None
    """Whether ``scripts/serve`` (``voxserve models recommend --if-missing``) pulls the
    recommended models (a Piper voice, faster-whisper base) when they are missing: true pulls
    without asking, false never offers; unset asks on a terminal and skips otherwise."""
    blob_dir: Path | None = None
    """Blob store folder (``<data_dir>/blobs`` when unset)."""
    host: str = "127.0.0.1"
    """Address the server listens on. Any address that is not loopback needs an API key to
    exist first (``voxserve keys create``)."""
    port: int = Field(8000, ge=0, le=65535)
    """Port the server listens on."""
    public_url: str | None = None
    """Externally visible base URL used in ``audio_url`` and signed file URLs. Unset, such URLs are
    built only for requests to a loopback host (``127.0.0.1``, ``localhost``); a request to any
    other host that needs one answers 503 (the ``Host`` header is never trusted)."""
    secret_key: str | None = Field(None, repr=False)
    """HMAC key for signed URLs and browser tokens; default a random key created once in the
    database (shared by every replica). A ``<data_dir>/secret.key`` of an older install is
    adopted once, so URLs signed before keep working."""
    keyless_after_revocation: bool = False
    """Serve keyless again (loopback only, as the local owner) once every API key is revoked.
    Off by default: after the first key was created, requests need a key until the operator turns
    this on, and a revoked key is refused (401) either way."""
    log_level: str = "INFO"
    """``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``."""
    log_json: bool = False
    """Log as JSON lines (one object per event) instead of text."""

    limits: LimitSettings = Field(default_factory=LimitSettings)
    engines: EngineSettings = Field(default_factory=EngineSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    decode: DecodeSettings = Field(default_factory=DecodeSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    blobs: BlobSettings = Field(default_factory=BlobSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    otel: OtelSettings = Field(default_factory=OtelSettings)
    diarization: DiarizationSettings = Field(default_factory=DiarizationSettings)
    shutdown_seconds: float = Field(30.0, ge=0)
    """On SIGTERM, how long in-flight requests may take to finish before they are cut off."""
    shutdown_drain_seconds: float = Field(0.0, ge=0)
    """On SIGTERM, how long ``/ready`` answers 503 while the server still accepts connections
    (time for a load balancer to take the replica out), before it stops accepting."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the TOML file, then the defaults."""
        given = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        path = config_path(given.get("config"))
        data = read_config_file(path) if path is not None else {}
        file_settings = InitSettingsSource(settings_cls, data)
        return init_settings, env_settings, dotenv_settings, file_secret_settings, file_settings

    def config_warnings(self, environ: Mapping[str, str] = os.environ) -> list[str]:
        """Unknown ``VOXSERVE_`` variables and unknown keys of the config file, each with the
        closest valid name: they are ignored, so a typo would otherwise pass silently."""
        warnings = unknown_variables(type(self), environ)
        if self.config is not None and self.config.is_file():
            warnings += unknown_keys(type(self), read_config_file(self.config), self.config)
        return warnings

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        if self.limits.sample_min_seconds >= self.limits.sample_max_seconds:
            raise ValueError("limits.sample_min_seconds must be below limits.sample_max_seconds")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voxserve.db'}"

    @property
    def uses_postgres(self) -> bool:
        """True when the database is PostgreSQL (batch jobs need it)."""
        return self.resolved_database_url.startswith(("postgresql", "postgres:"))

    @property
    def runs_batch_in_serve(self) -> bool:
        """Whether ``serve`` runs a batch worker (``batch.run_in_serve``, else on PostgreSQL)."""
        run = self.batch.run_in_serve
        return self.uses_postgres if run is None else run and self.uses_postgres

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def binds_loopback(self) -> bool:
        """True when ``host`` only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
