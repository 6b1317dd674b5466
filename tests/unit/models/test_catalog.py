"""The catalogue: complete, consistent with the folder layout, and merged with what is installed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

import pytest

from voxserve.models.catalog import KNOWN_MODELS, CatalogEntry, RemoteFile, find, list_models
from voxserve.models.layout import scan

PIPER_PATH = re.compile(
    r"(?P<lang>[a-z]{2,3})/(?P=lang)_[A-Z]{2}/(?P<name>[a-z0-9_]+)/"
    r"(?P<quality>x_low|low|medium|high)/(?P=lang)_[A-Z]{2}-(?P=name)-(?P=quality)\.onnx(\.json)?"
)


def test_names_are_unique() -> None:
    names = [entry.name for entry in KNOWN_MODELS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "name",
    [
        *(
            f"faster-whisper-{size}"
            for size in ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium")
        ),
        "faster-whisper-large-v3",
        *(
            f"piper-{voice}"
            for voice in (
                "en_US-joe-medium",
                "en_US-lessac-medium",
                "en_US-amy-medium",
                "en_GB-alan-medium",
                "de_DE-thorsten-medium",
                "fr_FR-siwis-medium",
                "es_ES-davefx-medium",
                "it_IT-riccardo-x_low",
            )
        ),
        "qwen2.5-1.5b-instruct",
        "smollm2-135m-instruct",
        "smollm2-360m-instruct",
        "pocket-tts",
    ],
)
def test_the_catalogue_has(name: str) -> None:
    assert find(name) is not None


def test_find_is_exact_but_case_insensitive() -> None:
    entry = find("Faster-Whisper-Base")
    assert entry is not None
    assert entry.name == "faster-whisper-base"
    assert find("faster-whisper") is None
    assert find("nothing") is None


@pytest.mark.parametrize("entry", KNOWN_MODELS, ids=lambda e: e.name)
def test_pulled_files_are_found_by_scan_under_the_entry_name(
    entry: CatalogEntry, tmp_path: Path
) -> None:
    # Stand-ins for the hub's files, readable where the engine reads them (a Piper voice config);
    # the bundled files are the real ones.
    stand_in = b'{"audio": {"sample_rate": 22050}}'
    contents = [
        (r.dest, stand_in if r.dest.endswith(".onnx.json") else b"weights") for r in entry.files
    ]
    contents += [(bundled.dest, bundled.read()) for bundled in entry.bundled]
    for dest, data in contents:
        path = tmp_path / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    found = scan(tmp_path)

    assert [(m.name, m.kind, m.engine) for m in found] == [(entry.name, entry.kind, entry.engine)]
    assert len(found[0].files) == len(entry.files) + len(entry.bundled)


@pytest.mark.parametrize("entry", KNOWN_MODELS, ids=lambda e: e.name)
def test_entries_are_well_formed(entry: CatalogEntry) -> None:
    assert entry.description
    assert entry.licence
    assert entry.size_bytes > 0
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry.repo)
    assert entry.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", entry.revision)
    known = [f.size for f in entry.files if f.size is not None]
    assert sum(known) <= entry.size_bytes * 1.01
    for remote in entry.files:
        assert not PurePosixPath(remote.path_in_repo).is_absolute()


def test_piper_voices_use_the_hub_folder_naming() -> None:
    voices = [e for e in KNOWN_MODELS if e.engine == "piper"]
    assert len(voices) >= 8
    for entry in voices:
        assert entry.repo == "rhasspy/piper-voices"
        for remote in entry.files:
            assert PIPER_PATH.fullmatch(remote.path_in_repo), remote.path_in_repo
            assert remote.dest == "piper/" + PurePosixPath(remote.path_in_repo).name


def test_faster_whisper_models_come_from_systran_with_the_files_the_engine_needs() -> None:
    for entry in (e for e in KNOWN_MODELS if e.engine == "faster-whisper"):
        assert entry.repo == f"Systran/{entry.name}"
        names = {PurePosixPath(f.dest).name for f in entry.files}
        assert {"model.bin", "config.json", "tokenizer.json"} <= names
        assert names & {"vocabulary.txt", "vocabulary.json"}


def test_optional_engines_name_their_extra() -> None:
    for entry in KNOWN_MODELS:
        expected = {"llama-cpp": "llama", "pocket-tts": "pocket-tts"}.get(entry.engine)
        assert entry.extra == expected, entry.name
    pocket = find("pocket-tts")
    assert pocket is not None
    assert pocket.gated
    tokenizer = next(f for f in pocket.files if f.dest.endswith("tokenizer.json"))
    assert tokenizer.repo == "kyutai/pocket-tts-without-voice-cloning"


def test_one_recommended_model_per_kind() -> None:
    for kind in ("tts", "stt", "chat"):
        assert len([e for e in KNOWN_MODELS if e.kind == kind and e.recommended]) == 1, kind


@pytest.mark.parametrize("dest", ["/abs/x", "../x", "a/../../x", "a\\b", ""])
def test_a_remote_file_must_stay_inside_the_models_folder(dest: str) -> None:
    with pytest.raises(ValueError, match="dest"):
        RemoteFile("x", dest)


def test_a_remote_file_sha256_must_be_one() -> None:
    with pytest.raises(ValueError, match="sha256"):
        RemoteFile("x", "y/x", sha256="ABC")


def test_list_models_of_an_empty_folder_lists_the_catalogue(tmp_path: Path) -> None:
    rows = list_models(tmp_path / "models")

    assert [row.name for row in rows] == [entry.name for entry in KNOWN_MODELS]
    assert not any(row.installed for row in rows)
    assert all(row.known and row.size_bytes > 0 and row.path is None for row in rows)


def test_list_models_merges_installed_and_known(tmp_path: Path) -> None:
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / "faster-whisper-base").mkdir(exist_ok=True)
        (tmp_path / "faster-whisper-base" / name).write_bytes(b"1234")
    (tmp_path / "my-llm").mkdir()
    (tmp_path / "my-llm" / "my.gguf").write_bytes(b"12345")

    rows = {row.name: row for row in list_models(tmp_path)}

    base = rows["faster-whisper-base"]
    assert base.installed
    assert base.known
    assert base.size_bytes == 16
    assert base.path == tmp_path / "faster-whisper-base"
    assert base.licence == "MIT"
    mine = rows["my-llm"]
    assert mine.installed
    assert not mine.known
    assert (mine.kind, mine.engine, mine.size_bytes) == ("chat", "llama-cpp", 5)
    assert mine.licence is None
    assert mine.description is None
    assert list(rows)[-1] == "my-llm"
    assert not rows["faster-whisper-tiny"].installed


@pytest.mark.model
def test_known_checksums_match_the_real_test_models(test_models: Path) -> None:
    checked = 0
    for entry in KNOWN_MODELS:
        for remote in entry.files:
            path = test_models / remote.dest
            if remote.sha256 is None or not path.is_file():
                continue
            assert path.stat().st_size == remote.size, remote.dest
            assert hashlib.sha256(path.read_bytes()).hexdigest() == remote.sha256, remote.dest
            checked += 1
    assert checked == 10
