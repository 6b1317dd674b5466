"""The llama.cpp chat engine: discovery from files (no llama.cpp needed) and real generation with
the SmolLM2 GGUF from ``VOXSERVE_TEST_MODELS`` (marker ``model``)."""

from __future__ import annotations

import os
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxserve.engines.llama_cpp import LlamaCppEngine, gguf_context_length
from voxserve.engines.protocol import ChatDelta, ChatEngine, ChatMessage, ChatRequest
from voxserve.errors import InvalidRequest, Unsupported

SMOLLM2 = "smollm2-135m-instruct"


def _gguf_header(context_length: int) -> bytes:
    """A GGUF v3 header with two metadata keys and no tensors (enough for discovery)."""

    def string(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    kvs = string("general.architecture") + struct.pack("<I", 8) + string("llama")
    kvs += string("general.tags") + struct.pack("<IIQ", 9, 8, 1) + string("chat")
    kvs += string("llama.context_length") + struct.pack("<II", 4, context_length)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 3) + kvs


# --------------------------------------------------------------------------- without llama.cpp


def test_discover_finds_one_model_per_folder(tmp_path: Path) -> None:
    (tmp_path / "tiny-chat").mkdir()
    (tmp_path / "tiny-chat" / "tiny.Q4_0.gguf").write_bytes(_gguf_header(2048))
    (tmp_path / "tiny-chat" / "mmproj-tiny.gguf").write_bytes(_gguf_header(2048))
    (tmp_path / "big-chat").mkdir()
    for part in (2, 1):
        (tmp_path / "big-chat" / f"big-0000{part}-of-00002.gguf").write_bytes(_gguf_header(32768))
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "model.bin").write_bytes(b"not a gguf")
    (tmp_path / "stray.gguf").write_bytes(_gguf_header(2048))

    engines = LlamaCppEngine.discover(tmp_path, n_ctx=4096)

    assert [(e.model_name, e.model_path.name) for e in engines] == [
        ("big-chat", "big-00001-of-00002.gguf"),
        ("tiny-chat", "tiny.Q4_0.gguf"),
    ]
    assert [e.capabilities().context_length for e in engines] == [4096, 2048]
    assert engines[1].capabilities().models == ("tiny-chat",)
    assert not engines[1].capabilities().audio_input
    assert LlamaCppEngine.discover(tmp_path / "missing") == []


def test_gguf_context_length_reads_the_header(tmp_path: Path) -> None:
    good = tmp_path / "m.gguf"
    good.write_bytes(_gguf_header(8192))
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGML and then nothing useful")

    assert gguf_context_length(good) == 8192
    assert gguf_context_length(bad) is None
    assert gguf_context_length(tmp_path / "absent.gguf") is None


def test_load_without_llama_cpp_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m" / "m.gguf"
    path.parent.mkdir()
    path.write_bytes(_gguf_header(2048))
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail

    with pytest.raises(Unsupported, match=re.escape("pip install 'voxserve[llama]'")):
        LlamaCppEngine(path).load()


# --------------------------------------------------------------------------- with the real model


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LlamaCppEngine]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    root = os.environ.get("VOXSERVE_TEST_MODELS")
    if not root:
        pytest.skip("VOXSERVE_TEST_MODELS is not set")
    engines = [e for e in LlamaCppEngine.discover(root) if e.model_name == SMOLLM2]
    if not engines:
        pytest.skip(f"no {SMOLLM2}/*.gguf under VOXSERVE_TEST_MODELS ({root})")
    engine = engines[0]
    engine.load()
    yield engine
    engine.unload()


def _ask(text: str, *, max_tokens: int | None = None, stop: tuple[str, ...] = ()) -> ChatRequest:
    """A one-message request, greedy so that answers repeat."""
    return ChatRequest(
        (ChatMessage("user", text),), temperature=0.0, max_tokens=max_tokens, stop=stop
    )


def _run(engine: LlamaCppEngine, request: ChatRequest) -> tuple[str, ChatDelta]:
    *pieces, final = engine.complete(request)
    assert all(piece.finish_reason is None for piece in pieces)
    return "".join(piece.text for piece in pieces), final


@pytest.mark.model
def test_answers_a_short_prompt(smollm2: LlamaCppEngine) -> None:
    request = _ask("What is the capital of France?", max_tokens=40)

    answer, final = _run(smollm2, request)

    assert isinstance(smollm2, ChatEngine)
    assert answer.strip()
    assert final.finish_reason in {"stop", "length"}
    assert final.prompt_tokens == smollm2.count_tokens(request)
    assert (final.prompt_tokens or 0) > 5
    assert (final.completion_tokens or 0) > 0
    assert smollm2.capabilities().context_length == 4096  # 4096 asked, 8192 trained


@pytest.mark.model
def test_honours_max_tokens(smollm2: LlamaCppEngine) -> None:
    answer, final = _run(smollm2, _ask("Write a long story about a dragon.", max_tokens=6))

    assert answer.strip()
    assert final.finish_reason == "length"
    assert 0 < (final.completion_tokens or 0) <= 7  # re-tokenized text may merge or split one


@pytest.mark.model
def test_honours_stop(smollm2: LlamaCppEngine) -> None:
    prompt = "List the days of the week, one per line."
    free, _ = _run(smollm2, _ask(prompt, max_tokens=60))
    words = free.split()
    assert len(words) >= 4, free
    stop = words[len(words) // 2]

    stopped, final = _run(smollm2, _ask(prompt, max_tokens=60, stop=(stop,)))

    assert stop not in stopped
    assert stopped == free.split(stop)[0]
    assert final.finish_reason == "stop"


@pytest.mark.model
def test_counts_more_tokens_for_longer_conversations(smollm2: LlamaCppEngine) -> None:
    one = ChatRequest((ChatMessage("user", "Hello"),))
    two = ChatRequest(
        (
            ChatMessage("system", "You are terse."),
            ChatMessage("user", "Hello"),
            ChatMessage("assistant", "Hi."),
            ChatMessage("user", "How are you today?"),
        )
    )

    assert 0 < smollm2.count_tokens(one) < smollm2.count_tokens(two)


@pytest.mark.model
def test_refuses_a_conversation_longer_than_the_context(smollm2: LlamaCppEngine) -> None:
    request = _ask("apple banana cherry " * 2000)

    with pytest.raises(InvalidRequest, match=r"^The conversation is \d+ tokens; the model's"):
        next(smollm2.complete(request))

    assert smollm2.count_tokens(request) > 4096
