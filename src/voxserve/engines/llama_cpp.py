"""Local chat with GGUF models through llama.cpp (the optional ``llama-cpp-python`` package).

Models live in ``<models_dir>/<folder>/*.gguf``; the folder name is the model name
(``smollm2-135m-instruct``). ``discover`` only looks at files, so it works without llama.cpp
installed; ``load`` is where the package is needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from voxserve.engines.device import Device, gpu_layers
from voxserve.engines.protocol import ChatCapabilities, ChatDelta, ChatRequest
from voxserve.errors import EngineFailure, InvalidRequest, Unsupported

_INSTALL_HINT = "The llama-cpp engine needs: pip install 'voxserve[llama]'"


class LlamaCppEngine:
    """A ``ChatEngine`` running one GGUF model in-process with llama.cpp.

    The prompt is built with the chat template stored in the GGUF (ChatML when it has none), and
    the same template is used to count tokens, so ``count_tokens`` is exact. One generation at a
    time: a llama.cpp context is not shared between threads.
    """

    version = "1"

    def __init__(
        self,
        model_path: Path | str,
        *,
        model_name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int = 2,
        device: Device = "cpu",
    ) -> None:
        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.parent.name
        self.name = self.model_name
        """Engines are named for their model (one per GGUF folder), so ``model`` selects one."""
        self.n_threads = n_threads
        self.device: Device = device
        """``cpu``: no layers on a GPU; ``cuda``: all of them; ``auto``: all when this
        llama-cpp-python build can offload."""
        train_ctx = gguf_context_length(self.model_path)
        self.context_length = min(n_ctx, train_ctx) if train_ctx else n_ctx
        """``n_ctx`` capped by the context the model was trained for."""
        # llama_cpp.Llama and its Jinja2ChatFormatter, typed Any: the package is optional, so mypy
        # must give the same answer with and without it installed.
        self._llm: Any = None
        self._formatter: Any = None

    @classmethod
    def discover(cls, models_dir: Path | str, **options: Any) -> list[LlamaCppEngine]:
        """One engine per ``<models_dir>/<folder>`` holding a GGUF model, sorted by folder.

        Multimodal projector files (``mmproj``) are skipped; of a split model, the first part is
        the one llama.cpp opens. ``options`` go to the constructor (``n_ctx``, ``n_threads``).
        """
        root = Path(models_dir)
        if not root.is_dir():
            return []
        engines = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            ggufs = sorted(
                p for p in folder.glob("*.gguf") if "mmproj" not in p.name.lower() and p.is_file()
            )
            firsts = [p for p in ggufs if "-of-" not in p.name or "-00001-of-" in p.name]
            if firsts:
                engines.append(cls(firsts[0], model_name=folder.name, **options))
        return engines

    def capabilities(self) -> ChatCapabilities:
        return ChatCapabilities(
            context_length=self.context_length,
            audio_input=False,
            max_concurrency=1,
            models=(self.model_name,),
        )

    def load(self) -> None:
        try:
            from llama_cpp import Llama, llama_supports_gpu_offload
            from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter
        except ImportError as exc:
            raise Unsupported(_INSTALL_HINT) from exc
        try:
            layers = gpu_layers(self.device, bool(llama_supports_gpu_offload()))
        except ValueError as exc:  # cuda asked for, a CPU-only build installed
            raise Unsupported(f"{self.model_name}: {exc}.") from exc
        try:
            llm = Llama(
                model_path=str(self.model_path),
                n_ctx=self.context_length,
                n_threads=self.n_threads,
                n_gpu_layers=layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise EngineFailure(f"llama.cpp could not load the model '{self.model_name}'.") from exc
        template = llm.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
        eos, bos = llm.token_eos(), llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llm, eos),
            bos_token=_token_text(llm, bos),
            stop_token_ids=[eos],
        )
        # Generation formats with the same formatter that counts tokens.
        llm.chat_handler = self._formatter.to_chat_handler()
        self._llm = llm

    def unload(self) -> None:
        llm, self._llm = self._llm, None
        self._formatter = None
        if llm is not None:
            llm.close()

    def count_tokens(self, request: ChatRequest) -> int:
        """Tokens of the conversation as the model sees it: chat template applied, tokenized."""
        llm = self._loaded()
        try:
            formatted = self._formatter(messages=_messages(request))
        except ValueError as exc:
            # Templates call raise_exception() for conversations they refuse (roles that do not
            # alternate, a system message in the wrong place): the request's fault.
            raise InvalidRequest(
                f"The model's chat template refused the conversation: {exc}"
            ) from exc
        tokens = llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        return len(tokens)

    def complete(self, request: ChatRequest) -> Iterator[ChatDelta]:
        llm = self._loaded()
        prompt_tokens = self.count_tokens(request)
        if prompt_tokens >= self.context_length:
            raise InvalidRequest(
                f"The conversation is {prompt_tokens} tokens; "
                f"the model's context is {self.context_length}."
            )
        stream = llm.create_chat_completion(
            messages=_messages(request),
            stream=True,
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            **_sampling(request),
        )
        pieces: list[str] = []
        finish_reason = None
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    pieces.append(text)
                    yield ChatDelta(text=text)
                finish_reason = choice.get("finish_reason") or finish_reason
        except (ValueError, RuntimeError) as exc:
            raise EngineFailure("llama.cpp failed while generating.") from exc
        completion = "".join(pieces).encode("utf-8")
        yield ChatDelta(
            finish_reason=finish_reason or "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(llm.tokenize(completion, add_bos=False)) if completion else 0,
        )

    def _loaded(self) -> Any:
        if self._llm is None:
            self.load()
        assert self._llm is not None
        return self._llm


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    # Audio parts never reach a text-only model: the chat service puts transcripts in content.
    return [{"role": m.role, "content": m.content} for m in request.messages]


def _sampling(request: ChatRequest) -> dict[str, float]:
    """Only what the request sets; llama-cpp-python's own defaults apply to the rest."""
    values = {"temperature": request.temperature, "top_p": request.top_p}
    return {key: value for key, value in values.items() if value is not None}


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")


# --------------------------------------------------------------------------- GGUF metadata

_GGUF_MAGIC = b"GGUF"
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9


def gguf_context_length(path: Path) -> int | None:
    """The ``<arch>.context_length`` a GGUF file declares (the training context), read from its
    header without llama.cpp; None when the file is unreadable or does not say."""
    try:
        with path.open("rb") as file:
            if file.read(4) != _GGUF_MAGIC:
                return None
            _version, _tensors, kv_count = struct.unpack("<IQQ", file.read(20))
            for _ in range(kv_count):
                key = _read_string(file)
                kind = _read(file, "I")
                if key.endswith(".context_length") and kind in _SCALARS:
                    return int(_read(file, _SCALARS[kind]))
                _skip_value(file, kind)
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return None
    return None


def _read(file: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    return struct.unpack("<" + fmt, file.read(size))[0]


def _read_string(file: BinaryIO) -> str:
    return file.read(_read(file, "Q")).decode("utf-8")


def _skip_value(file: BinaryIO, kind: int) -> None:
    if kind in _SCALARS:
        file.seek(struct.calcsize("<" + _SCALARS[kind]), 1)
    elif kind == _STRING:
        file.seek(_read(file, "Q"), 1)
    elif kind == _ARRAY:
        item_kind, count = _read(file, "I"), _read(file, "Q")
        if item_kind in _SCALARS:
            file.seek(count * struct.calcsize("<" + _SCALARS[item_kind]), 1)
        else:
            for _ in range(count):
                _skip_value(file, item_kind)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")
