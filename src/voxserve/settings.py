"""voxserve settings: one ``Settings`` object, built once by the CLI or by ``create_app``.

Every field can be set from the environment with the ``VOXSERVE_`` prefix; nested sections use a
double underscore, e.g. ``VOXSERVE_LIMITS__MAX_CUSTOM_VOICES=50``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import platformdirs
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class RemoteSettings(BaseModel):
    """OpenAI-compatible servers that voxserve forwards to (vLLM, vLLM-Omni, llama.cpp, Ollama)."""

    tts_url: str | None = None
    """Base URL (``http://gpu:8000/v1``) of a remote ``/audio/speech`` server."""
    tts_model: str | None = None
    """Model name sent to the remote speech server."""
    tts_voices: list[str] = Field(default_factory=list)
    """Voice names to offer when the remote server cannot list its voices."""
    tts_languages: list[str] = Field(default_factory=list)
    tts_cloning: bool = False
    """The remote speech server clones from ``ref_audio`` (vLLM-Omni serving Voxtral does)."""
    tts_sample_rate: int = Field(24000, gt=0)
    """Rate of the remote server's 16-bit ``pcm`` output."""
    stt_url: str | None = None
    """Base URL of a remote ``/audio/transcriptions`` server."""
    stt_model: str | None = None
    stt_diarization: bool = False
    """The remote transcription server diarizes (OpenAI's ``diarized_json``, e.g. model
    ``gpt-4o-transcribe-diarize``): ``diarize=true`` is passed on to it."""
    chat_url: str | None = None
    """Base URL of a remote ``/chat/completions`` server."""
    chat_model: str | None = None
    chat_context_length: int = Field(32768, gt=0)
    """Context window of the remote chat model (to refuse over-long conversations early)."""
    chat_audio_native: bool = False
    """The remote chat model takes audio parts itself (e.g. Voxtral on vLLM): pass them through."""
    api_key: str | None = None
    """Bearer key sent to the remote servers."""
    timeout_seconds: float = Field(300.0, gt=0)


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
    timeout_seconds: float = Field(30.0, gt=0)
    max_redirects: int = Field(3, ge=0)


class RetentionSettings(BaseModel):
    """How long deleted and generated things are kept."""

    deleted_voice_days: float = Field(30.0, ge=0)
    """Soft-deleted voices keep their sample this long before the cleanup purges it."""
    generated_audio_hours: float = Field(24.0, ge=0)
    """Stored generations (``audio_url`` of the /api/tts gateway) live this long."""
    cleanup_interval_seconds: float = Field(300.0, gt=0)
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


def _default_data_dir() -> Path:
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

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Where the SQLite database, blobs and secrets live."""
    database_url: str | None = None
    """SQLAlchemy async URL; default ``sqlite+aiosqlite:///<data_dir>/voxserve.db``.
    PostgreSQL: ``postgresql+asyncpg://user:pass@host/db``."""
    models_dir: Path | None = None
    """The models folder (``<data_dir>/models`` when unset)."""
    blob_dir: Path | None = None
    """Blob store folder (``<data_dir>/blobs`` when unset)."""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str | None = None
    """Externally visible base URL used in ``audio_url`` and signed file URLs. Unset, such URLs are
    built only for requests to a loopback host (``127.0.0.1``, ``localhost``); a request to any
    other host that needs one answers 503 (the ``Host`` header is never trusted)."""
    secret_key: str | None = None
    """HMAC key for signed URLs; default a random key kept in ``<data_dir>/secret.key``."""
    keyless_after_revocation: bool = False
    """Serve keyless again (loopback only, as the local owner) once every API key is revoked.
    Off by default: after the first key was created, requests need a key until the operator turns
    this on, and a revoked key is refused (401) either way."""
    log_level: str = "INFO"
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
    diarization: DiarizationSettings = Field(default_factory=DiarizationSettings)

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        if self.limits.sample_min_seconds >= self.limits.sample_max_seconds:
            raise ValueError("limits.sample_min_seconds must be below limits.sample_max_seconds")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voxserve.db'}"

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

    def load_secret_key(self) -> bytes:
        """The HMAC key: the setting, else a random key created once in the data dir."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            try:
                tmp.rename(path) if not path.exists() else tmp.unlink()
            except FileExistsError:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()
