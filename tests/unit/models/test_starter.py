"""What a first start does about the recommended models (``voxserve.models.starter.plan``) and
the ``voxserve models recommend`` command that ``scripts/serve`` runs; never the network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.models.fake_hub import FakeHub
from tests.unit.models.hf_cache import add_to_cache
from voxserve.cli.models import app
from voxserve.models.catalog import CatalogEntry
from voxserve.models.layout import scan
from voxserve.models.pull import HubOptions
from voxserve.models.starter import (
    DECLINED_MARKER,
    STARTER_MODELS,
    hub_answers,
    plan,
    remember_declined,
    starter_entries,
)

PIPER, WHISPER = starter_entries()


def answers(result: bool) -> object:
    def probe(entry: CatalogEntry, hub: HubOptions) -> bool:
        return result

    return probe


def install_copy(models: Path, test_models: Path, name: str) -> None:
    if name == PIPER.name:
        (models / "piper").mkdir(parents=True, exist_ok=True)
        for file in ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"):
            (models / "piper" / file).symlink_to(test_models / "piper" / file)
    else:
        models.mkdir(parents=True, exist_ok=True)
        (models / name).symlink_to(test_models / name)


def test_the_starters_are_a_piper_voice_and_whisper_base() -> None:
    assert STARTER_MODELS == ("piper-en_US-joe-medium", "faster-whisper-base")
    assert (PIPER.engine, WHISPER.engine) == ("piper", "faster-whisper")
    assert not PIPER.gated and not WHISPER.gated


def test_nothing_to_do_when_both_are_installed(tmp_path: Path, test_models: Path) -> None:
    for name in STARTER_MODELS:
        install_copy(tmp_path, test_models, name)
    decision = plan(tmp_path, HubOptions(cache_dir=tmp_path / "hf"), probe=answers(True))
    assert (decision.outcome, decision.missing) == ("present", ())


def test_a_reachable_hub_is_offered_only_the_missing_ones(
    tmp_path: Path, test_models: Path
) -> None:
    install_copy(tmp_path / "models", test_models, PIPER.name)
    decision = plan(tmp_path / "models", HubOptions(cache_dir=tmp_path / "hf"), probe=answers(True))
    assert decision.outcome == "offer"
    assert decision.missing == (WHISPER,)
    assert decision.download_bytes == WHISPER.size_bytes


def test_an_unreachable_hub_starts_on_the_built_in_engines(tmp_path: Path) -> None:
    decision = plan(tmp_path, HubOptions(cache_dir=tmp_path / "hf"), probe=answers(False))
    assert decision.outcome == "unreachable"
    assert decision.missing == (PIPER, WHISPER)
    offline = plan(tmp_path, HubOptions(cache_dir=tmp_path / "hf", offline=True))
    assert offline.outcome == "unreachable"  # offline never probes


def test_models_in_the_hf_cache_need_no_hub(tmp_path: Path, test_models: Path) -> None:
    cache = tmp_path / "hf"
    for entry in (PIPER, WHISPER):
        add_to_cache(cache, entry, test_models)

    def no_probe(entry: CatalogEntry, hub: HubOptions) -> bool:
        raise AssertionError("the hub is not asked when the cache has everything")

    decision = plan(tmp_path / "models", HubOptions(cache_dir=cache), probe=no_probe)
    assert decision.outcome == "from-cache"
    assert decision.download_bytes == 0


def test_a_declined_offer_is_not_made_again(tmp_path: Path) -> None:
    remember_declined(tmp_path)
    decision = plan(tmp_path, HubOptions(cache_dir=tmp_path / "hf"), probe=answers(True))
    assert decision.outcome == "declined"
    assert scan(tmp_path) == []  # the marker is no model


def test_hub_answers_asks_the_hub_for_metadata(tmp_path: Path) -> None:
    with FakeHub() as hub:
        first = PIPER.files[0]
        hub.add(PIPER.repo, PIPER.revision, first.path_in_repo, b"onnx", lfs=True)
        assert hub_answers(PIPER, HubOptions(hub_url=hub.url))
        assert [r.method for r in hub.requests] == ["HEAD"]
        assert hub_answers(WHISPER, HubOptions(hub_url=hub.url))  # a 404 is still an answer
    with FakeHub() as never_asked:
        url = never_asked.url  # stopped before any connection: nothing listens there
    assert not hub_answers(PIPER, HubOptions(hub_url=url))


# ---------------------------------------------------------------- the command


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings in a temp folder, a Hugging Face cache of the test's own, and a hub address
    where nothing listens. Returns the models folder."""
    models = tmp_path / "models"
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(models))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    with FakeHub() as hub:
        monkeypatch.setenv("VOXSERVE_HUB_URL", hub.url)
    return models


def test_recommend_without_a_hub_says_so_in_one_line(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["recommend", "--if-missing"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "not reachable" in lines[0]
    assert "built-in engines" in lines[0]
    assert scan(cli_env) == []


def test_recommend_links_cached_models_without_asking(
    cli_env: Path, tmp_path: Path, test_models: Path
) -> None:
    for entry in (PIPER, WHISPER):
        add_to_cache(tmp_path / "hf", entry, test_models)

    result = CliRunner().invoke(app, ["recommend", "--if-missing"])

    assert result.exit_code == 0, result.output
    assert [m.name for m in scan(cli_env)] == ["faster-whisper-base", "piper-en_US-joe-medium"]
    assert CliRunner().invoke(app, ["recommend", "--if-missing"]).output == ""


def test_recommend_off_a_terminal_asks_nothing_and_pulls_nothing(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("voxserve.cli.models.plan", _offer)
    result = CliRunner().invoke(app, ["recommend", "--if-missing"])
    assert result.exit_code == 0, result.output
    assert "VOXSERVE_PULL_RECOMMENDED=1" in result.output
    assert not (cli_env / DECLINED_MARKER).exists()


def test_recommend_on_a_terminal_remembers_a_no(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("voxserve.cli.models.plan", _offer)
    monkeypatch.setattr("voxserve.cli.models.interactive", lambda: True)
    result = CliRunner().invoke(app, ["recommend", "--if-missing"], input="n\n")
    assert result.exit_code == 0, result.output
    assert "[Y/n]" in result.output
    assert (cli_env / DECLINED_MARKER).exists()


def test_recommend_pulls_when_told_to(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pulled: list[str] = []
    monkeypatch.setattr("voxserve.cli.models.plan", _offer)
    monkeypatch.setattr("voxserve.cli.models.install", lambda entry, **_: pulled.append(entry.name))
    monkeypatch.setenv("VOXSERVE_PULL_RECOMMENDED", "1")
    remember_declined(cli_env)  # asked for now: an earlier no no longer holds

    result = CliRunner().invoke(app, ["recommend", "--if-missing"])

    assert result.exit_code == 0, result.output
    assert pulled == list(STARTER_MODELS)
    assert not (cli_env / DECLINED_MARKER).exists()


def test_recommend_set_to_false_offers_nothing(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_PULL_RECOMMENDED", "0")
    monkeypatch.setattr("voxserve.cli.models.plan", _offer)
    monkeypatch.setattr("voxserve.cli.models.install", _never)
    assert CliRunner().invoke(app, ["recommend", "--if-missing"]).output == ""


def _offer(models_dir: Path, hub: HubOptions) -> object:
    from voxserve.models.starter import StarterPlan

    return StarterPlan("offer", (PIPER, WHISPER), PIPER.size_bytes + WHISPER.size_bytes)


def _never(*args: object, **kwargs: object) -> bool:
    raise AssertionError("nothing is pulled")


def test_the_cache_builder_matches_the_catalogue(tmp_path: Path, test_models: Path) -> None:
    # The test cache is only as good as its layout: the hub client must find every file in it.
    from voxserve.models.pull import in_cache

    add_to_cache(tmp_path, PIPER, test_models)
    assert in_cache(PIPER, tmp_path)
    shutil.rmtree(tmp_path / "models--rhasspy--piper-voices" / "snapshots")
    assert not in_cache(PIPER, tmp_path)
