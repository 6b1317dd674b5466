"""Pulling from a hub: against a loopback hub double, offline."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import httpx
import pytest

from tests.unit.models.hub_double import HubDouble
from voxserve.errors import InvalidRequest, NotFound
from voxserve.models.catalog import BundledFile, CatalogEntry, RemoteFile, find
from voxserve.models.layout import remove, scan
from voxserve.models.pull import (
    ChecksumMismatch,
    DownloadFailed,
    hub_url_from_env,
    partial_downloads,
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


def host(hub: HubDouble, **model_bin: object) -> None:
    hub.add(REPO, "main", "model.bin", WEIGHTS, **model_bin)
    for name, data in SMALL.items():
        hub.add(REPO, "main", name, data)


def gets(hub: HubDouble, name: str) -> list[str | None]:
    """The Range header of every answered GET of ``name`` (None: no Range)."""
    return [r.headers.get("range") for r in hub.requests_for(name) if r.status != 302]


def leftovers(models: Path) -> list[Path]:
    return sorted(models.rglob("*.part"))


async def test_pull_lays_out_the_model_and_scan_finds_it(hub: HubDouble, tmp_path: Path) -> None:
    host(hub, linked_etag=True)
    models = tmp_path / "models"

    installed = await pull(whisper_entry(), models, hub_url=hub.url)

    assert (installed.name, installed.kind, installed.engine) == (NAME, "stt", "faster-whisper")
    assert (models / NAME / "model.bin").read_bytes() == WEIGHTS
    for name, data in SMALL.items():
        assert (models / NAME / name).read_bytes() == data
    assert [m.name for m in scan(models)] == [NAME]
    assert installed.size_bytes == len(WEIGHTS) + sum(map(len, SMALL.values()))
    assert leftovers(models) == []
    assert all(r.path.startswith(f"/{REPO}/resolve/main/") for r in hub.requests)


async def test_a_dropped_transfer_resumes_with_a_range_request(
    hub: HubDouble, tmp_path: Path
) -> None:
    host(hub, linked_etag=True, drop_after=len(WEIGHTS) // 2)

    await pull(whisper_entry(), tmp_path, hub_url=hub.url)

    ranges = gets(hub, "model.bin")
    assert ranges[0] is None
    assert len(ranges) == 2
    assert ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(WEIGHTS) // 2
    assert sha((tmp_path / NAME / "model.bin").read_bytes()) == sha(WEIGHTS)


async def test_an_interrupted_pull_is_resumed_by_the_next_one(
    hub: HubDouble, tmp_path: Path
) -> None:
    half = len(WEIGHTS) // 2
    host(hub, drop_after=half)
    entry = whisper_entry(size=len(WEIGHTS), sha256=sha(WEIGHTS))

    with pytest.raises(DownloadFailed):
        await pull(entry, tmp_path, hub_url=hub.url, retries=0)
    part = tmp_path / NAME / "model.bin.part"
    assert partial_downloads(entry, tmp_path) == [part]
    received = part.stat().st_size
    assert 0 < received <= half
    assert scan(tmp_path) == []

    await pull(entry, tmp_path, hub_url=hub.url, retries=0)

    assert gets(hub, "model.bin") == [None, f"bytes={received}-"]
    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS
    assert partial_downloads(entry, tmp_path) == []


async def test_a_wrong_catalogue_checksum_fails_and_leaves_nothing(
    hub: HubDouble, tmp_path: Path
) -> None:
    host(hub)

    with pytest.raises(ChecksumMismatch, match="sha256"):
        await pull(whisper_entry(sha256=sha(b"other")), tmp_path, hub_url=hub.url)

    assert not (tmp_path / NAME / "model.bin").exists()
    assert leftovers(tmp_path) == []
    assert len(gets(hub, "model.bin")) == 1  # a mismatch is not retried


@pytest.mark.parametrize("redirect", [False, True], ids=["direct", "via-cdn-redirect"])
async def test_the_hubs_linked_etag_is_checked_when_the_catalogue_has_no_sha256(
    tmp_path: Path, redirect: bool
) -> None:
    with HubDouble(redirect=redirect) as hub:
        host(hub, linked_etag=True, claimed_sha256=sha(b"what the hub says"))

        with pytest.raises(ChecksumMismatch):
            await pull(whisper_entry(), tmp_path, hub_url=hub.url)

    assert not (tmp_path / NAME / "model.bin").exists()
    assert leftovers(tmp_path) == []


async def test_pull_follows_the_hubs_redirect_to_its_cdn(tmp_path: Path) -> None:
    with HubDouble(redirect=True) as hub:
        host(hub, linked_etag=True, drop_after=len(WEIGHTS) // 3)
        await pull(whisper_entry(), tmp_path, hub_url=hub.url)

    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS
    cdn = [r for r in hub.requests_for("model.bin") if r.path.startswith("/cdn/")]
    assert len(cdn) == 2
    assert cdn[1].headers.get("range", "").startswith("bytes=")


async def test_a_wrong_size_fails_and_leaves_nothing(hub: HubDouble, tmp_path: Path) -> None:
    host(hub)

    with pytest.raises(ChecksumMismatch, match="bytes"):
        await pull(whisper_entry(size=len(WEIGHTS) - 1), tmp_path, hub_url=hub.url)

    assert leftovers(tmp_path) == []


async def test_progress_is_monotonic_per_file_and_reaches_the_total(
    hub: HubDouble, tmp_path: Path
) -> None:
    host(hub, linked_etag=True)
    calls: list[tuple[str, int, int | None]] = []

    await pull(whisper_entry(), tmp_path, hub_url=hub.url, on_progress=lambda *a: calls.append(a))

    assert next(c[0] for c in calls) == f"{NAME}/model.bin"
    for name, data in {"model.bin": WEIGHTS, **SMALL}.items():
        mine = [(done, total) for label, done, total in calls if label == f"{NAME}/{name}"]
        done = [d for d, _ in mine]
        assert done == sorted(done)
        assert done[0] == 0
        assert mine[-1] == (len(data), len(data))
        assert {total for _, total in mine} == {len(data)}
    assert len([c for c in calls if c[0].endswith("model.bin")]) > 2


async def test_progress_of_a_resumed_file_starts_at_what_was_there(
    hub: HubDouble, tmp_path: Path
) -> None:
    host(hub, drop_after=len(WEIGHTS) // 2)
    entry = whisper_entry(size=len(WEIGHTS))
    with pytest.raises(DownloadFailed):
        await pull(entry, tmp_path, hub_url=hub.url, retries=0)
    received = (tmp_path / NAME / "model.bin.part").stat().st_size
    calls: list[tuple[str, int, int | None]] = []

    await pull(entry, tmp_path, hub_url=hub.url, on_progress=lambda *a: calls.append(a))

    mine = [(done, total) for label, done, total in calls if label.endswith("model.bin")]
    assert mine[0] == (received, len(WEIGHTS))
    assert mine[-1] == (len(WEIGHTS), len(WEIGHTS))


async def test_files_in_place_are_kept_and_force_fetches_again(
    hub: HubDouble, tmp_path: Path
) -> None:
    host(hub)
    entry = whisper_entry(size=len(WEIGHTS), sha256=sha(WEIGHTS))
    await pull(entry, tmp_path, hub_url=hub.url)
    answered = len(hub.requests)

    await pull(entry, tmp_path, hub_url=hub.url)
    assert len(hub.requests) == answered

    await pull(entry, tmp_path, hub_url=hub.url, force=True)
    assert len(hub.requests) == 2 * answered


async def test_a_corrupt_file_in_place_is_fetched_again(hub: HubDouble, tmp_path: Path) -> None:
    host(hub)
    entry = whisper_entry(size=len(WEIGHTS), sha256=sha(WEIGHTS))
    target = tmp_path / NAME / "model.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * len(WEIGHTS))

    await pull(entry, tmp_path, hub_url=hub.url)

    assert target.read_bytes() == WEIGHTS


async def test_a_part_as_long_as_the_file_starts_over(hub: HubDouble, tmp_path: Path) -> None:
    host(hub)
    part = tmp_path / NAME / "model.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\1" * (len(WEIGHTS) + 5))

    await pull(whisper_entry(sha256=sha(WEIGHTS)), tmp_path, hub_url=hub.url)

    assert [r.status for r in hub.requests_for("model.bin")] == [416, 200]
    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS


async def test_a_hub_that_ignores_ranges_makes_pull_start_over(
    hub: HubDouble, tmp_path: Path
) -> None:
    host(hub, ranges=False)
    part = tmp_path / NAME / "model.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"junk that is not the start of the file")

    await pull(whisper_entry(sha256=sha(WEIGHTS)), tmp_path, hub_url=hub.url)

    assert gets(hub, "model.bin")[0] is not None  # it asked to resume...
    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS  # ...and restarted on 200


async def test_a_gated_model_needs_a_token(
    hub: HubDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host(hub, token="hf_secret")

    with pytest.raises(InvalidRequest, match="HF_TOKEN"):
        await pull(whisper_entry(), tmp_path, hub_url=hub.url)
    assert leftovers(tmp_path) == []

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    await pull(whisper_entry(), tmp_path, hub_url=hub.url)
    assert (tmp_path / NAME / "model.bin").read_bytes() == WEIGHTS


async def test_a_file_missing_on_the_hub_is_not_found(hub: HubDouble, tmp_path: Path) -> None:
    hub.add(REPO, "main", "model.bin", WEIGHTS)

    with pytest.raises(NotFound, match=r"config\.json"):
        await pull(whisper_entry(), tmp_path, hub_url=hub.url)


async def test_a_file_can_come_from_another_repo_at_a_pinned_revision(
    hub: HubDouble, tmp_path: Path
) -> None:
    pinned = "0123456789abcdef0123456789abcdef01234567"
    hub.add("kyutai/weights", pinned, "languages/english/model.safetensors", b"W" * 1000)
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

    installed = await pull(entry, tmp_path, hub_url=hub.url + "/")

    assert installed.name == "pocket-tts"
    assert installed.size_bytes == 1002 + len(CONFIG.read())


async def test_bundled_files_are_written_after_the_hub_files(
    hub: HubDouble, tmp_path: Path
) -> None:
    # The Pocket TTS config ships with voxserve; written last, it makes the model complete only
    # once the weights are in (a failed pull leaves no config that names missing files).
    entry = find("pocket-tts")
    assert entry is not None and entry.bundled
    for remote in entry.files[1:]:  # the weights are missing on the hub
        revision = remote.revision or entry.revision
        hub.add(remote.repo or entry.repo, revision, remote.path_in_repo, b"W" * 10)

    with pytest.raises(NotFound):
        await pull(entry, tmp_path, hub_url=hub.url)
    assert not (tmp_path / "pocket-tts" / "config.yaml").exists()


async def test_pull_then_remove(hub: HubDouble, tmp_path: Path) -> None:
    host(hub)
    await pull(whisper_entry(), tmp_path, hub_url=hub.url)

    removed = remove(tmp_path, NAME)

    assert removed.name == NAME
    assert not (tmp_path / NAME).exists()
    assert scan(tmp_path) == []


async def test_a_given_client_is_used_and_left_open(hub: HubDouble, tmp_path: Path) -> None:
    host(hub)
    async with httpx.AsyncClient() as client:
        await pull(whisper_entry(), tmp_path, hub_url=hub.url, client=client)
        assert not client.is_closed


async def test_an_unreachable_hub_fails_after_retries(tmp_path: Path) -> None:
    with HubDouble() as hub:
        url = hub.url  # the port is free again once the double has stopped

    with pytest.raises(DownloadFailed):
        await pull(whisper_entry(), tmp_path, hub_url=url, retries=0)


def test_hub_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub_url_from_env() == "https://huggingface.co"
    assert token_from_env() is None
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    assert hub_url_from_env() == "https://mirror.example"
    monkeypatch.setenv("VOXSERVE_HUB_URL", "http://hub.local:8080")
    assert hub_url_from_env() == "http://hub.local:8080"
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert token_from_env() == "hf_x"
