"""The one engine-choice policy, through the services that use it: speech, transcription and chat
answer an unknown model, a known-but-missing engine and a missing default identically."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.support.audio_samples import tone_wav
from voxserve.bootstrap import Services, open_services
from voxserve.core.chat import ChatCompletionRequest, InputMessage
from voxserve.core.engine_choice import EngineChoice
from voxserve.core.engine_hints import install_hint
from voxserve.core.engine_report import better_engine_hints
from voxserve.core.speech import SpeechRequest
from voxserve.core.transcription import AudioSource, TranscriptionRequest
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.engines.manager import EngineManager
from voxserve.errors import InvalidRequest, ServiceUnavailable, VoxError
from voxserve.settings import EngineSettings, Settings

OWNER = "o1"
Ask = Callable[[Services, str | None], Awaitable[Any]]


@asynccontextmanager
async def services(settings: Settings, *engines: object) -> AsyncIterator[Services]:
    async with open_services(settings, engines=list(engines)) as s:  # type: ignore[arg-type, unused-ignore]
        await s.storage.keys.get_or_create_owner(OWNER, OWNER)
        yield s


async def speak(s: Services, model: str | None) -> Any:
    return await s.speech.prepare(SpeechRequest(OWNER, "Hi.", model=model, voice_id="alloy"))


async def transcribe(s: Services, model: str | None) -> Any:
    source = AudioSource(data=tone_wav())
    return await s.transcription.prepare(TranscriptionRequest(OWNER, source, model=model))


async def chat(s: Services, model: str | None) -> Any:
    message = InputMessage("user", ("hi",))
    return await s.chat.prepare(ChatCompletionRequest(OWNER, (message,), model=model))


KINDS: dict[str, tuple[Ask, str]] = {
    "speech": (speak, "fake-tts"),
    "transcription": (transcribe, "fake-stt"),
    "chat": (chat, "fake-chat"),
}
"""Each service with the request that exercises its engine choice, and the engine it gets."""


def with_engines(settings: Settings, **defaults: str) -> Settings:
    return settings.model_copy(update={"engines": settings.engines.model_copy(update=defaults)})


async def error_of(ask: Ask, s: Services, model: str | None) -> VoxError:
    with pytest.raises(VoxError) as info:
        await ask(s, model)
    return info.value


async def test_an_unknown_model_is_the_same_400_everywhere(settings: Settings) -> None:
    async with services(settings, FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()) as s:
        errors = {kind: await error_of(ask, s, "no-such-model") for kind, (ask, _) in KINDS.items()}
    assert {type(e) for e in errors.values()} == {InvalidRequest}
    assert {(e.status, e.code, e.field) for e in errors.values()} == {
        (400, "invalid_request", "model")
    }
    for kind, error in errors.items():
        engine = KINDS[kind][1]
        assert error.message == (
            f"Model 'no-such-model' not found. Available {kind} models: {engine}."
        )


@pytest.mark.parametrize(
    ("kind", "name", "hint"),
    [
        ("speech", "piper", "voxserve models pull piper-en_US-joe-medium"),
        ("speech", "pocket-tts", "scripts/install --pocket, then voxserve models pull pocket-tts"),
        ("transcription", "faster-whisper-base", "voxserve models pull faster-whisper-base"),
        ("transcription", "faster-whisper-small", "voxserve models pull faster-whisper-small"),
        ("chat", "qwen2.5-1.5b-instruct", "scripts/install --llama, then voxserve models pull"),
    ],
)
async def test_a_known_engine_that_is_not_installed_is_a_503_with_its_hint(
    settings: Settings, kind: str, name: str, hint: str
) -> None:
    ask = KINDS[kind][0]
    async with services(settings, FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()) as s:
        error = await error_of(ask, s, name)
    assert isinstance(error, ServiceUnavailable)
    assert error.status == 503
    assert f"'{name}' is known but not installed" in error.message
    assert hint in error.message


async def test_the_hint_is_the_text_the_startup_log_prints(settings: Settings) -> None:
    async with services(settings, FakeTTSEngine(cloning=False), FakeSTTEngine()) as s:
        piper = await error_of(speak, s, "piper")
        whisper = await error_of(transcribe, s, "faster-whisper-base")
        hints = better_engine_hints(s.engines)
    assert f"for natural voices: {install_hint('piper', 'tts')}" in hints
    assert install_hint("piper", "tts") in piper.message
    assert any(install_hint("faster-whisper-base", "stt") in line for line in hints)
    assert install_hint("faster-whisper-base", "stt") in whisper.message


async def test_a_configured_default_that_is_not_installed_is_a_503_everywhere(
    settings: Settings,
) -> None:
    configured = with_engines(
        settings, default_tts="piper", default_stt="faster-whisper-base", default_chat="nope"
    )
    async with services(configured, FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()) as s:
        errors = {kind: await error_of(ask, s, None) for kind, (ask, _) in KINDS.items()}
        hosted = await error_of(speak, s, "tts-1")
    assert {type(e) for e in errors.values()} == {ServiceUnavailable}
    assert "VOXSERVE_ENGINES__DEFAULT_TTS" in errors["speech"].message
    assert install_hint("piper", "tts") in errors["speech"].message
    assert install_hint("faster-whisper-base", "stt") in errors["transcription"].message
    assert "Set VOXSERVE_ENGINES__DEFAULT_CHAT to an installed engine" in errors["chat"].message
    assert hosted.message == errors["speech"].message


async def test_no_engine_of_a_kind_is_a_503_saying_what_to_install(settings: Settings) -> None:
    async with services(settings) as s:
        errors = {kind: await error_of(ask, s, None) for kind, (ask, _) in KINDS.items()}
        unknown = await error_of(chat, s, "no-such-model")
    assert {type(e) for e in errors.values()} == {ServiceUnavailable}
    assert errors["speech"].message.startswith("No speech engine is installed.")
    assert "VOXSERVE_REMOTE__STT_URL" in errors["transcription"].message
    assert "voxserve models pull qwen2.5-1.5b-instruct" in errors["chat"].message
    assert unknown.message == errors["chat"].message


async def test_hosted_names_and_engine_names() -> None:
    second = FakeChatEngine()
    second.name = "other-chat"
    engines = [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine(), second]
    choice = EngineChoice(EngineManager(engines, EngineSettings()), EngineSettings())  # type: ignore[arg-type]
    assert choice.speech("tts-1").name == "fake-tts"
    assert choice.speech("voxtral-mini-tts-latest").name == "fake-tts"
    assert choice.speech(None, voice_engine="fake-tts").name == "fake-tts"
    assert choice.transcription("whisper-1").name == "fake-stt"
    assert choice.transcription("fake-stt").name == "fake-stt"
    assert choice.chat("gpt-4o").name == "fake-chat"
    assert choice.chat("other-chat").name == "other-chat"
    with pytest.raises(InvalidRequest):
        choice.transcription("tts-1")  # a hosted name of another kind is no model here


async def test_abilities_pick_the_best_engine_that_has_them() -> None:
    plain, cloner = FakeTTSEngine(cloning=False), FakeTTSEngine()
    cloner.name = "cloner"
    listener, translator = FakeSTTEngine(), FakeSTTEngine(translation="Hello.")
    translator.name = "translator"
    manager = EngineManager([plain, cloner, listener, translator], EngineSettings())  # type: ignore[list-item]
    choice = EngineChoice(manager, EngineSettings())
    assert choice.speech(None).name == "fake-tts"
    assert choice.speech(None, cloning=True).name == "cloner"
    assert choice.transcription(None).name == "fake-stt"
    assert choice.transcription("whisper-1", translation=True).name == "translator"
    assert choice.transcription("fake-stt", translation=True).name == "fake-stt"  # as named
    assert choice.default_name("chat") is None
