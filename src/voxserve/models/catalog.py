"""The catalogue of models ``voxserve models pull`` knows how to fetch from a model hub.

Each entry says where its files live on the hub (repository, revision, path) and where they go in
the models folder, in the layout :mod:`voxserve.models.layout` scans and the engines discover.
A sha256 is given only where it is known for certain (the files the test-models fetcher also
ships); for the others ``pull`` checks the sha256 the hub reports for LFS files
(``X-Linked-Etag``), and the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from voxserve.models.layout import InstalledModel, ModelKind, scan


@dataclass(frozen=True)
class RemoteFile:
    """One file of a catalogue entry.

    Attributes:
        path_in_repo: the file's path in the hub repository.
        dest: where it goes, relative to the models folder (POSIX separators).
        size: its exact size in bytes, when known.
        sha256: its sha256 (64 lowercase hex digits), when known for certain.
        repo: the hub repository when it is not the entry's (Pocket TTS keeps its tokenizer in a
            sibling repository).
        revision: the revision to fetch when it is not the entry's.
    """

    path_in_repo: str
    dest: str
    size: int | None = None
    sha256: str | None = None
    repo: str | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        _check_dest(self.dest)
        if self.sha256 is not None and not _is_sha256(self.sha256):
            raise ValueError(f"not a sha256: {self.sha256!r}")


@dataclass(frozen=True)
class BundledFile:
    """A file of a catalogue entry that ships inside voxserve instead of coming from the hub
    (the Pocket TTS config, whose upstream copy names ``hf://`` files).

    Attributes:
        resource: the file's name in the ``voxserve.models`` package.
        dest: where it goes, relative to the models folder (POSIX separators).
    """

    resource: str
    dest: str

    def __post_init__(self) -> None:
        _check_dest(self.dest)

    def read(self) -> bytes:
        return resources.files("voxserve.models").joinpath(self.resource).read_bytes()


@dataclass(frozen=True)
class CatalogEntry:
    """A model that can be pulled.

    Attributes:
        name: the installed name (``faster-whisper-base``, ``piper-en_US-joe-medium``).
        kind: ``tts``, ``stt`` or ``chat``.
        engine: the engine that serves it.
        description: one line for ``voxserve models list``.
        licence: the licence of the weights (SPDX id where there is one).
        size_bytes: the approximate download size.
        repo: the hub repository id (``Systran/faster-whisper-base``).
        revision: a branch (``main``) or a pinned commit.
        files: what to download and where to put it.
        bundled: files that come with voxserve, written after the hub's (so the model is complete
            only once its weights are in).
        extra: the voxserve extra the engine needs (``pip install 'voxserve[<extra>]'``), if any.
        gated: the hub serves the files only to accounts that accepted the licence (set
            ``HF_TOKEN``).
        recommended: the default pick of its kind.
    """

    name: str
    kind: ModelKind
    engine: str
    description: str
    licence: str
    size_bytes: int
    repo: str
    revision: str
    files: tuple[RemoteFile, ...]
    bundled: tuple[BundledFile, ...] = ()
    extra: str | None = None
    gated: bool = False
    recommended: bool = False

    def __post_init__(self) -> None:
        if not self.files:
            raise ValueError(f"catalogue entry {self.name} has no files")


@dataclass(frozen=True)
class ModelListing:
    """One row of ``voxserve models list``: a known model, an installed one, or both.

    ``size_bytes`` is the size on disk when installed, else the catalogue's approximate size.
    ``licence``, ``description`` and ``extra`` are None for installed models the catalogue does
    not know.
    """

    name: str
    kind: ModelKind
    engine: str
    installed: bool
    known: bool
    size_bytes: int
    licence: str | None
    description: str | None
    path: Path | None
    extra: str | None


def _check_dest(dest: str) -> None:
    path = PurePosixPath(dest)
    if path.is_absolute() or ".." in path.parts or "\\" in dest or not path.parts:
        raise ValueError(f"dest must be a plain relative path, not {dest!r}")


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


# --- faster-whisper: CTranslate2 conversions of OpenAI Whisper (MIT) by Systran ---------------

_FW_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
_FW_KNOWN: dict[tuple[str, str], tuple[int, str]] = {
    ("base", "model.bin"): (
        145_217_532,
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    ("base", "config.json"): (
        2_309,
        "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    ),
    ("base", "tokenizer.json"): (
        2_203_239,
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    ("base", "vocabulary.txt"): (
        459_861,
        "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    ),
    ("tiny.en", "model.bin"): (
        75_537_502,
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    ("tiny.en", "config.json"): (
        2_317,
        "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    ),
    ("tiny.en", "tokenizer.json"): (
        2_128_466,
        "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    ),
    ("tiny.en", "vocabulary.txt"): (
        422_309,
        "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    ),
}
"""Sizes and sha256 of the files that the test-models fetcher ships (same bytes as the hub's)."""


def _faster_whisper(
    size: str,
    description: str,
    size_bytes: int,
    *,
    files: tuple[str, ...] = _FW_FILES,
    recommended: bool = False,
) -> CatalogEntry:
    name = f"faster-whisper-{size}"
    remote = []
    for file in files:
        known_size, sha = _FW_KNOWN.get((size, file), (None, None))
        remote.append(RemoteFile(file, f"{name}/{file}", size=known_size, sha256=sha))
    return CatalogEntry(
        name=name,
        kind="stt",
        engine="faster-whisper",
        description=description,
        licence="MIT",
        size_bytes=size_bytes,
        repo=f"Systran/{name}",
        revision="main",
        files=tuple(remote),
        recommended=recommended,
    )


# --- Piper voices (rhasspy/piper-voices) ------------------------------------------------------

_PIPER_KNOWN: dict[str, tuple[int, str]] = {
    "en_US-joe-medium.onnx": (
        63_201_294,
        "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    ),
    "en_US-joe-medium.onnx.json": (
        4_794,
        "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    ),
}
_PIPER_MEDIUM_BYTES = 63_206_000
_PIPER_CARD = "see the voice's MODEL_CARD on the hub"
"""Piper voices carry the licence of the data they were trained on, one per voice."""


def _piper(
    voice: str, description: str, *, licence: str = _PIPER_CARD, size_bytes: int = 0
) -> CatalogEntry:
    """A voice named ``<lang_REGION>-<name>-<quality>``, stored in the hub as
    ``<lang>/<lang_REGION>/<name>/<quality>/<voice>.onnx`` (+ ``.onnx.json``)."""
    region, speaker, quality = voice.split("-")
    folder = f"{region.split('_')[0]}/{region}/{speaker}/{quality}"
    files = []
    for file in (f"{voice}.onnx", f"{voice}.onnx.json"):
        known_size, sha = _PIPER_KNOWN.get(file, (None, None))
        files.append(RemoteFile(f"{folder}/{file}", f"piper/{file}", size=known_size, sha256=sha))
    return CatalogEntry(
        name=f"piper-{voice}",
        kind="tts",
        engine="piper",
        description=description,
        licence=licence if licence == _PIPER_CARD else f"{licence} ({_PIPER_CARD})",
        size_bytes=size_bytes or _PIPER_MEDIUM_BYTES,
        repo="rhasspy/piper-voices",
        revision="main",
        files=tuple(files),
    )


# --- llama.cpp chat models (GGUF) -------------------------------------------------------------


def _gguf(
    name: str,
    repo: str,
    file: str,
    description: str,
    size_bytes: int,
    *,
    recommended: bool = False,
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        kind="chat",
        engine="llama-cpp",
        description=description,
        licence="Apache-2.0",
        size_bytes=size_bytes,
        repo=repo,
        revision="main",
        files=(RemoteFile(file, f"{name}/{file}"),),
        extra="llama",
        recommended=recommended,
    )


# --- Kyutai Pocket TTS ------------------------------------------------------------------------

_POCKET_TTS = CatalogEntry(
    name="pocket-tts",
    kind="tts",
    engine="pocket-tts",
    description=(
        "Kyutai Pocket TTS (English, 24 kHz, ~100M parameters) with voice cloning; "
        "the hub asks you to accept its terms first (set HF_TOKEN)"
    ),
    licence="CC-BY-4.0",
    size_bytes=230_000_000,
    # The revisions are the ones pocket-tts 4.0.1 pins in pocket_tts/config/english.yaml. That
    # config names hf:// files, so voxserve ships a copy that names the local ones (the engine
    # discovers the model by its config.yaml).
    repo="kyutai/pocket-tts",
    revision="db04f0e653473e5c7333c69686ac92b7460b0c1d",
    files=(
        RemoteFile("languages/english/model.safetensors", "pocket-tts/english/model.safetensors"),
        RemoteFile(
            "languages/english/tokenizer.json",
            "pocket-tts/english/tokenizer.json",
            repo="kyutai/pocket-tts-without-voice-cloning",
            revision="00eac05ed3d16bdc3f6b5d598874019c34a89214",
        ),
    ),
    bundled=(BundledFile("pocket_tts_english.yaml", "pocket-tts/config.yaml"),),
    extra="pocket-tts",
    gated=True,
    recommended=True,
)


KNOWN_MODELS: tuple[CatalogEntry, ...] = (
    # Speech to text.
    _faster_whisper("tiny", "Whisper tiny, 99 languages; fastest, least accurate", 78_200_000),
    _faster_whisper("tiny.en", "Whisper tiny, English only", 78_090_594),
    _faster_whisper(
        "base", "Whisper base, 99 languages; a good CPU default", 147_882_941, recommended=True
    ),
    _faster_whisper("base.en", "Whisper base, English only", 147_800_000),
    _faster_whisper("small", "Whisper small, 99 languages", 486_200_000),
    _faster_whisper("small.en", "Whisper small, English only", 486_100_000),
    _faster_whisper("medium", "Whisper medium, 99 languages; slow on a CPU", 1_530_600_000),
    _faster_whisper(
        "large-v3",
        "Whisper large-v3, 99 languages; most accurate, wants a GPU",
        3_090_000_000,
        # large-v3 has 128 mel bins, which its preprocessor config says; its vocabulary is JSON.
        files=(
            "model.bin",
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "vocabulary.json",
        ),
    ),
    # Text to speech.
    _POCKET_TTS,
    _piper("en_US-joe-medium", "Piper, US English, male", licence="CC0-1.0"),
    _piper("en_US-lessac-medium", "Piper, US English, female"),
    _piper("en_US-amy-medium", "Piper, US English, female"),
    _piper("en_GB-alan-medium", "Piper, British English, male"),
    _piper("de_DE-thorsten-medium", "Piper, German, male", licence="CC0-1.0"),
    _piper("fr_FR-siwis-medium", "Piper, French, female", licence="CC-BY-4.0"),
    _piper("es_ES-davefx-medium", "Piper, Spanish (Spain), male"),
    _piper("it_IT-riccardo-x_low", "Piper, Italian, male; x_low quality", size_bytes=28_100_000),
    # Chat.
    _gguf(
        "qwen2.5-1.5b-instruct",
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        "Qwen2.5 1.5B Instruct, Q4_K_M; multilingual, 32k context; a good CPU default",
        1_117_320_736,
        recommended=True,
    ),
    _gguf(
        "smollm2-360m-instruct",
        "bartowski/SmolLM2-360M-Instruct-GGUF",
        "SmolLM2-360M-Instruct-Q4_K_M.gguf",
        "SmolLM2 360M Instruct, Q4_K_M; small and quick, English",
        270_600_000,
    ),
    _gguf(
        "smollm2-135m-instruct",
        "bartowski/SmolLM2-135M-Instruct-GGUF",
        "SmolLM2-135M-Instruct-Q4_K_M.gguf",
        "SmolLM2 135M Instruct, Q4_K_M; tiny, for tests and very small machines",
        105_500_000,
    ),
)
"""Every model ``voxserve models pull`` can fetch, grouped by kind, smallest first within
a family."""


def find(name: str) -> CatalogEntry | None:
    """The catalogue entry called ``name`` (exact, case-insensitive), or None."""
    wanted = name.strip().lower()
    return next((entry for entry in KNOWN_MODELS if entry.name.lower() == wanted), None)


def list_models(models_dir: Path) -> list[ModelListing]:
    """Known models in catalogue order (marked installed or not), then installed models the
    catalogue does not know, by name."""
    installed = {model.name: model for model in scan(models_dir)}
    rows = [_known_row(entry, installed.pop(entry.name, None)) for entry in KNOWN_MODELS]
    return rows + [_unknown_row(model) for model in installed.values()]


def _known_row(entry: CatalogEntry, model: InstalledModel | None) -> ModelListing:
    return ModelListing(
        name=entry.name,
        kind=entry.kind,
        engine=entry.engine,
        installed=model is not None,
        known=True,
        size_bytes=model.size_bytes if model else entry.size_bytes,
        licence=entry.licence,
        description=entry.description,
        path=model.path if model else None,
        extra=entry.extra,
    )


def _unknown_row(model: InstalledModel) -> ModelListing:
    return ModelListing(
        name=model.name,
        kind=model.kind,
        engine=model.engine,
        installed=True,
        known=False,
        size_bytes=model.size_bytes,
        licence=None,
        description=None,
        path=model.path,
        extra=None,
    )
