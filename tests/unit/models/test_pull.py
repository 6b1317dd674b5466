"""Pulling from the hub with huggingface_hub: against a loopback fake hub, and from a
Hugging Face cache built in the test; never the network."""

from __future__ import annotations

import errno
import hashlib
import os
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.models.fake_hub import FakeHub
from voxserve.errors import InvalidRequest, NotFound
from voxserve.models.catalog import BundledFile, CatalogEntry, RemoteFile, find
from voxserve.models.layout import remove, scan
from voxserve.models.pull import (
    ChecksumMismatch,
    DownloadFailed,
    HubOptions,
    hub_url_from_env,
    in_cache,
    pull,
    token_from_env,
)

REPO = "Systran/faster-whisper-test"
NAME = "faster-whisper-test"
CONFIG = BundledFile("pocket_tts_english.yaml", "pocket-tts/config.yaml")
"""The Pocket TTS config voxserve ships; it names english/model.safetensors and tokenizer.json."""
WEIGHTS = random.Random(7).randbytes(3_000_000)
"""Big enough for several chunks, so a drop half-way leaves a real partial file."""
SMALL = {"config.json": b'{"a": 1}', "tokenizer.json": b"{}", "vocabulary.txt": b"a\nb\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def whisper_entry(**model_bin: object) -> CatalogEntry:
    """A faster-whisper-shaped entry; ``model_bin`` sets fields of the model.bin RemoteFile."""
    files = [RemoteFile("model.bin", f"{NAME}/model.bin", **model_bin)]  # type: ignore[arg-type]
    files += [RemoteFile(name, f"{NAME}/{name}") for name in SMALL]
    return CatalogEntry(
        name=NAME,
        kind="stt",
        engine="faster-whisper",
        description="test",
        licence="MIT",
        size_bytes=len(WEIGHTS),
        repo=REPO,
        revision="main",
        files=tuple(files),
    )


def host(hub: FakeHub, **model_bin: object) -> None:
    hub.add(REPO, "main", "model.bin", WEIGHTS, lfs=True, **model_bin)
    for name, data in SMALL.items():
        hub.add(REPO, "main", name, data)


def gets(hub: FakeHub, name: str) -> list[str | None]:
    """The Range header of every answered GET of ``name`` (None: no Range)."""
    return [r.headers.get("range") for r in hub.requests_for(name) if r.status != 302]


def leftovers(models: Path) -> list[Path]:
    return sorted(models.rglob("*.part"))


def test_pull_lays_out_the_model_as_links_into_the_cache(
    hub: FakeHub, options: HubOptions, hf_cache: Path, tmp_path: Path
) -> None:
    host(hub)
    models = tmp_path / "models"

    installed = pull(whisper_entry(), models, hub=options)

    assert (installed.name, installed.kind, installed.engine) == (NAME, "stt", "faster-whisper")
    weights = models / NAME / "model.bin"
    assert weights.read_bytes() == WEIGHTS
    for name, data in SMALL.items():
        assert (models / NAME / name).read_bytes() == data
    assert [m.name for m in scan(models)] == [NAME]
    assert installed.size_bytes == len(WEIGHTS) + sum(map(len, SMALL.values()))
    assert leftovers(models) == []
    assert all(r.path.startswith(f"/{REPO}/resolve/main/") for r in hub.requests)
    # One copy on disk: the models folder's file is the cache's blob, hard-linked.
    blob = hf_cache / "models--Systran--faster-whisper-test" / "blobs" / sha(WEIGHTS)
    assert weights.stat().st_ino == blob.stat().st_ino
    assert not weights.is_symlink()


def test_a_dropped_transfer_resumes_with_a_range_request(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    host(hub, drop_after=len(WEIGHTS) // 2)

    pull(whisper_entry(), tmp_path, hub=options)

    ranges = gets(hub, "model.bin")
    assert ranges[0] is None
    assert len(ranges) == 2
    assert ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(WEIGHTS) // 2
    assert sha((tmp_path / NAME / "model.bin").read_bytes()) == sha(WEIGHTS)


def test_a_failed_pull_leaves_no_model_and_the_next_one_reuses_the_cache(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    hub.add(REPO, "main", "model.bin", WEIGHTS, lfs=True)
    hub.add(REPO, "main", "config.json", SMALL["config.json"])

    with pytest.raises(NotFound, match=r"tokenizer\.json"):
        pull(whisper_entry(), tmp_path, hub=options)
    assert scan(tmp_path) == []
    assert leftovers(tmp_path) == []

    host(hub)
    pull(whisper_entry(), tmp_path, hub=options)

    assert len(gets(hub, "model.bin")) == 1  # the second pull took it from the cache
    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS


def test_a_wrong_catalogue_checksum_fails_and_leaves_nothing(
    hub: FakeHub, options: HubOptions, hf_cache: Path, tmp_path: Path
) -> None:
    host(hub)

    with pytest.raises(ChecksumMismatch, match="sha256"):
        pull(whisper_entry(sha256=sha(b"other")), tmp_path, hub=options)

    assert not (tmp_path / NAME / "model.bin").exists()
    assert leftovers(tmp_path) == []
    assert not list(hf_cache.rglob(sha(WEIGHTS)))  # the cached copy is gone too
    assert len(gets(hub, "model.bin")) == 1  # a mismatch is not retried


@pytest.mark.parametrize("redirect", [False, True], ids=["direct", "via-cdn-redirect"])
def test_the_hubs_sha256_is_checked_when_the_catalogue_has_none(
    tmp_path: Path, hf_cache: Path, redirect: bool
) -> None:
    with FakeHub(redirect=redirect) as hub:
        host(hub, claimed_sha256=sha(b"what the hub says"))

        with pytest.raises(ChecksumMismatch):
            pull(whisper_entry(), tmp_path, hub=HubOptions(hub_url=hub.url, cache_dir=hf_cache))

    assert not (tmp_path / NAME / "model.bin").exists()
    assert leftovers(tmp_path) == []


def test_pull_follows_the_hubs_redirect_to_its_cdn(tmp_path: Path, hf_cache: Path) -> None:
    with FakeHub(redirect=True) as hub:
        host(hub)
        pull(whisper_entry(), tmp_path, hub=HubOptions(hub_url=hub.url, cache_dir=hf_cache))

    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS
    cdn = [r for r in hub.requests_for("model.bin") if r.path.startswith("/cdn/")]
    assert len(cdn) == 1


def test_a_wrong_size_fails_and_leaves_nothing(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    host(hub)

    with pytest.raises(ChecksumMismatch, match="bytes"):
        pull(whisper_entry(size=len(WEIGHTS) - 1), tmp_path, hub=options)

    assert leftovers(tmp_path) == []
    assert not (tmp_path / NAME / "model.bin").exists()


def test_progress_is_monotonic_per_file_and_reaches_the_total(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    host(hub)
    calls: list[tuple[str, int, int | None]] = []

    pull(whisper_entry(), tmp_path, hub=options, on_progress=lambda *a: calls.append(a))

    assert next(c[0] for c in calls) == f"{NAME}/model.bin"
    for name, data in {"model.bin": WEIGHTS, **SMALL}.items():
        mine = [(done, total) for label, done, total in calls if label == f"{NAME}/{name}"]
        done = [d for d, _ in mine]
        assert done == sorted(done)
        assert done[0] == 0
        assert mine[-1] == (len(data), len(data))
        assert {total for _, total in mine} == {len(data)}
    assert len([c for c in calls if c[0].endswith("model.bin")]) > 2


def test_files_in_place_are_kept_and_force_fetches_again(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    host(hub)
    entry = whisper_entry(size=len(WEIGHTS), sha256=sha(WEIGHTS))
    pull(entry, tmp_path, hub=options)
    answered = len(hub.requests)

    pull(entry, tmp_path, hub=options)
    assert len(hub.requests) == answered

    pull(entry, tmp_path, hub=options, force=True)
    assert len(gets(hub, "model.bin")) == 2


def test_a_corrupt_file_in_place_is_replaced(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    host(hub)
    entry = whisper_entry(size=len(WEIGHTS), sha256=sha(WEIGHTS))
    target = tmp_path / NAME / "model.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * len(WEIGHTS))

    pull(entry, tmp_path, hub=options)

    assert target.read_bytes() == WEIGHTS


def test_a_gated_model_needs_a_token(
    hub: FakeHub, options: HubOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host(hub, token="hf_secret")

    with pytest.raises(InvalidRequest, match="HF_TOKEN"):
        pull(whisper_entry(), tmp_path, hub=options)
    assert leftovers(tmp_path) == []

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    pull(whisper_entry(), tmp_path, hub=options)
    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS


def test_a_file_missing_on_the_hub_is_not_found(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    hub.add(REPO, "main", "model.bin", WEIGHTS, lfs=True)

    with pytest.raises(NotFound, match=r"config\.json"):
        pull(whisper_entry(), tmp_path, hub=options)


def test_a_file_can_come_from_another_repo_at_a_pinned_revision(
    hub: FakeHub, hf_cache: Path, tmp_path: Path
) -> None:
    pinned = "0123456789abcdef0123456789abcdef01234567"
    hub.add("kyutai/weights", pinned, "languages/english/model.safetensors", b"W" * 1000, lfs=True)
    hub.add("kyutai/tokens", "v1", "languages/english/tokenizer.json", b"{}")
    entry = CatalogEntry(
        name="pocket-tts",
        kind="tts",
        engine="pocket-tts",
        description="test",
        licence="CC-BY-4.0",
        size_bytes=1002,
        repo="kyutai/weights",
        revision=pinned,
        files=(
            RemoteFile(
                "languages/english/model.safetensors", "pocket-tts/english/model.safetensors"
            ),
            RemoteFile(
                "languages/english/tokenizer.json",
                "pocket-tts/english/tokenizer.json",
                repo="kyutai/tokens",
                revision="v1",
            ),
        ),
        bundled=(CONFIG,),
    )

    installed = pull(entry, tmp_path, hub=HubOptions(hub_url=hub.url + "/", cache_dir=hf_cache))

    assert installed.name == "pocket-tts"
    assert installed.size_bytes == 1002 + len(CONFIG.read())


def test_bundled_files_are_written_after_the_hub_files(
    hub: FakeHub, options: HubOptions, tmp_path: Path
) -> None:
    # The Pocket TTS config ships with voxserve; written last, it makes the model complete only
    # once the weights are in (a failed pull leaves no config that names missing files).
    entry = find("pocket-tts")
    assert entry is not None and entry.bundled
    for remote in entry.files[1:]:  # the weights are missing on the hub
        revision = remote.revision or entry.revision
        hub.add(remote.repo or entry.repo, revision, remote.path_in_repo, b"W" * 10)

    with pytest.raises(NotFound):
        pull(entry, tmp_path, hub=options)
    assert not (tmp_path / "pocket-tts" / "config.yaml").exists()


def test_pull_then_remove(hub: FakeHub, options: HubOptions, tmp_path: Path) -> None:
    host(hub)
    pull(whisper_entry(), tmp_path / "models", hub=options)

    removed = remove(tmp_path / "models", NAME)

    assert removed.name == NAME
    assert not (tmp_path / "models" / NAME).exists()
    assert scan(tmp_path / "models") == []
    assert in_cache(whisper_entry(), options.cache_dir)  # the cache keeps its copy


def test_offline_pulls_come_from_the_cache_alone(
    hub: FakeHub, options: HubOptions, hf_cache: Path, tmp_path: Path
) -> None:
    host(hub)
    offline = HubOptions(hub_url=hub.url, cache_dir=hf_cache, offline=True)
    assert not in_cache(whisper_entry(), hf_cache)
    with pytest.raises(DownloadFailed, match="not in the Hugging Face cache and offline"):
        pull(whisper_entry(), tmp_path / "a", hub=offline)
    assert hub.requests == []

    pull(whisper_entry(), tmp_path / "a", hub=options)
    assert in_cache(whisper_entry(), hf_cache)
    answered = len(hub.requests)

    installed = pull(whisper_entry(), tmp_path / "b", hub=offline)
    assert installed.name == NAME
    assert len(hub.requests) == answered


def test_a_models_folder_on_another_filesystem_gets_copies(
    hub: FakeHub, options: HubOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host(hub)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    pull(whisper_entry(), tmp_path, hub=options)

    weights = tmp_path / NAME / "model.bin"
    assert weights.read_bytes() == WEIGHTS
    assert weights.stat().st_nlink == 1


def test_an_unreachable_hub_fails_clearly(
    hf_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client backs off (1, 2, 4... s) before giving up; the test need not wait for it.
    monkeypatch.setattr("huggingface_hub.utils._http.time", SimpleNamespace(sleep=lambda _: None))
    with FakeHub() as hub:
        url = hub.url  # the port is free again once the fake has stopped

    with pytest.raises(DownloadFailed, match="not reachable"):
        pull(whisper_entry(), tmp_path, hub=HubOptions(hub_url=url, cache_dir=hf_cache))


def test_hub_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub_url_from_env() == "https://huggingface.co"
    assert HubOptions().endpoint == "https://huggingface.co"
    assert token_from_env() is None
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert HubOptions().endpoint == "https://mirror.example"
    monkeypatch.setenv("VOXSERVE_HUB_URL", "http://hub.local:8080")
    assert hub_url_from_env() == "http://hub.local:8080"
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert token_from_env() == "hf_x"
