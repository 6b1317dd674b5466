"""ChatService without a server: engine choice, audio as transcripts or passed through, limits,
usage. Fake engines record what reached them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from tests.support.audio_samples import tone_wav
from tests.support.decode_bombs import silent_flac
from voxserve.bootstrap import Services, open_services
from voxserve.core.chat import (
    AudioInput,
    ChatCompletionRequest,
    InputMessage,
    sniff_format,
    transcript_block,
)
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine
from voxserve.engines.protocol import ChatDelta, ChatRequest, Segment
from voxserve.errors import (
    InvalidRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from voxserve.settings import Settings

OWNER = "o1"
TRANSCRIPT = "Ask not what your country can do for you. Ask what you can do."


@asynccontextmanager
async def services(settings: Settings, *engines: object) -> AsyncIterator[Services]:
    async with open_services(settings, engines=list(engines)) as s:  # type: ignore[arg-type, unused-ignore]
        await s.storage.keys.get_or_create_owner(OWNER, OWNER)
        yield s


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ask(
    *parts: str | AudioInput, model: str | None = None, **options: object
) -> ChatCompletionRequest:
    message = InputMessage("user", parts)
    return ChatCompletionRequest(OWNER, (message,), model=model, **options)  # type: ignore[arg-type, unused-ignore]


# --------------------------------------------------------------------------- engine choice


async def test_hosted_names_and_none_use_the_default_engine(settings: Settings) -> None:
    first, second = FakeChatEngine(), FakeChatEngine()
    second.name = "other-chat"
    async with services(settings, first, second) as s:
        # The service holds engine handles (snapshots), never the engines themselves.
        assert s.chat.pick_engine(None).name == "fake-chat"
        assert s.chat.pick_engine("voxtral-small-latest").name == "fake-chat"
        assert s.chat.pick_engine("gpt-4o-audio-preview").name == "fake-chat"
        assert s.chat.pick_engine("other-chat").name == "other-chat"
        with pytest.raises(InvalidRequest, match="Available chat models: fake-chat, other-chat"):
            s.chat.pick_engine("no-such-model")
    configured = settings.model_copy(
        update={"engines": settings.engines.model_copy(update={"default_chat": "other-chat"})}
    )
    async with services(configured, first, second) as s:
        assert s.chat.pick_engine("voxtral-mini-latest").name == "other-chat"


async def test_no_chat_engine_says_how_to_configure_one(settings: Settings) -> None:
    async with services(settings, FakeSTTEngine()) as s:
        with pytest.raises(ServiceUnavailable) as info:
            await s.chat.prepare(ask("hello"))
    assert info.value.status == 503
    assert "voxserve models pull qwen2.5-1.5b-instruct" in info.value.message
    assert "VOXSERVE_REMOTE__CHAT_URL" in info.value.message


# --------------------------------------------------------------------------- audio


async def test_cascade_puts_a_delimited_transcript_in_the_prompt(settings: Settings) -> None:
    chat, stt = FakeChatEngine(), FakeSTTEngine(TRANSCRIPT)
    async with services(settings, stt, chat) as s:
        prepared = await s.chat.prepare(
            ask("What is said here?", AudioInput(b64(tone_wav(3.2))), model="voxtral-mini-latest")
        )
        answer = await s.chat.complete(prepared)
    content = chat.requests[0].messages[0].content
    assert content.startswith("What is said here?\n")
    assert '<audio_transcript index=1 language="en" duration="3.2s">' in content
    assert "[0.0-1.6] Ask not what your country can do for you." in content
    assert content.endswith("</audio_transcript>")
    assert chat.requests[0].messages[0].audio == ()
    assert stt.calls, "the STT engine transcribed the part"
    assert prepared.prompt_audio_seconds == 4
    assert answer.text and answer.finish_reason == "stop"
    assert answer.prompt_tokens == prepared.prompt_tokens


async def test_two_parts_are_numbered_in_order(settings: Settings) -> None:
    chat = FakeChatEngine()
    async with services(settings, FakeSTTEngine(TRANSCRIPT), chat) as s:
        first = AudioInput("data:audio/wav;base64," + b64(tone_wav(2.0)))
        second = AudioInput(b64(tone_wav(1.0)))
        prepared = await s.chat.prepare(ask(first, second, "Which speaker do you prefer?"))
    content = prepared.request.messages[0].content
    assert content.index("index=1") < content.index("index=2")
    assert 'duration="2.0s"' in content and 'duration="1.0s"' in content
    assert prepared.prompt_audio_seconds == 3


async def test_audio_native_engine_gets_the_audio_unchanged(settings: Settings) -> None:
    chat, stt = FakeChatEngine(audio_input=True), FakeSTTEngine()
    audio = tone_wav(2.5)
    async with services(settings, stt, chat) as s:
        prepared = await s.chat.prepare(ask("Describe it.", AudioInput(b64(audio), "mp3")))
    message = prepared.request.messages[0]
    assert message.content == "Describe it."
    assert len(message.audio) == 1
    part = message.audio[0]
    assert part.encoded == audio
    assert part.format == "wav"  # the bytes win over a wrong hint
    assert part.clip.duration == pytest.approx(2.5)
    assert prepared.prompt_audio_seconds == 3
    assert stt.calls == []


async def test_audio_native_engine_refuses_hours_of_audio_before_decoding(
    settings: Settings,
) -> None:
    limited = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_audio_seconds": 600})}
    )
    bomb = silent_flac(1)  # an hour of silence, declared in the header (#14 item 2)
    async with services(limited, FakeSTTEngine(), FakeChatEngine(audio_input=True)) as s:
        with pytest.raises(PayloadTooLarge, match="limit is 600 s"):
            await s.chat.prepare(ask("Describe it.", AudioInput(b64(bomb), "flac")))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("%%% not base64 %%%", "not valid base64"),
        (b64(b"this is text, not audio" * 20), "could not be decoded"),
        ("", "empty"),
        ("http://127.0.0.1:1/a.wav", "loopback"),
        ("ftp://example.com/a.wav", "not valid base64"),
    ],
)
async def test_unreadable_audio_is_a_400(settings: Settings, value: str, message: str) -> None:
    async with services(settings, FakeSTTEngine(), FakeChatEngine()) as s:
        with pytest.raises(InvalidRequest) as info:
            await s.chat.prepare(ask("hi", AudioInput(value)))
    assert not isinstance(info.value, ValidationFailed)
    assert info.value.status == 400
    assert info.value.field == "input_audio"
    assert message in info.value.message and info.value.message.startswith("Audio part 1")


async def test_signed_url_of_this_server_is_read_locally(settings: Settings) -> None:
    chat = FakeChatEngine()
    async with services(settings, FakeSTTEngine(TRANSCRIPT), chat) as s:
        record = await s.files.upload(
            OWNER, filename="a.wav", data=tone_wav(2.0), content_type="audio/wav", purpose="audio"
        )
        url = s.files.signed_url(record, base_url="http://127.0.0.1:9", expiry_hours=1)
        prepared = await s.chat.prepare(ask("What is it?", AudioInput(url)))
    assert "Ask not what your country" in prepared.request.messages[0].content


# --------------------------------------------------------------------------- limits and options


async def test_conversation_longer_than_the_context_is_refused(settings: Settings) -> None:
    async with services(settings, FakeChatEngine(context_length=30)) as s:
        long = " ".join(["word"] * 40)
        with pytest.raises(InvalidRequest, match="context of model 'fake-chat' is 30") as info:
            await s.chat.prepare(ask(long))
        assert info.value.status == 400
        short = "a few words"
        await s.chat.prepare(ask(short, max_tokens=20))  # 7 + 20 fits
        with pytest.raises(InvalidRequest, match="lower max_tokens"):
            await s.chat.prepare(ask(short, max_tokens=24))


async def test_options_reach_the_engine(settings: Settings) -> None:
    chat = FakeChatEngine()
    async with services(settings, chat) as s:
        request = ask("one two three", temperature=0.2, top_p=0.9, max_tokens=2, stop=("x",))
        answer = await s.chat.complete(await s.chat.prepare(request))
    sent = chat.requests[0]
    assert (sent.temperature, sent.top_p, sent.max_tokens, sent.stop) == (0.2, 0.9, 2, ("x",))
    assert answer.text == "three two"
    assert answer.completion_tokens == 2


class UncountedChat(FakeChatEngine):
    """Like a remote server that reports no usage: the last delta has no counts."""

    def complete(self, request: ChatRequest) -> Iterator[ChatDelta]:
        for delta in super().complete(request):
            yield replace(delta, prompt_tokens=None, completion_tokens=None)


async def test_missing_counts_are_filled_in_and_usage_recorded(settings: Settings) -> None:
    async with services(settings, FakeSTTEngine(), UncountedChat()) as s:
        prepared = await s.chat.prepare(ask("a b c", AudioInput(b64(tone_wav(1.5)))))
        deltas = [d async for d in s.chat.stream(prepared)]
        records = await s.storage.usage.records(OWNER)
    last = deltas[-1]
    assert last.finish_reason == "stop"
    assert last.prompt_tokens == prepared.prompt_tokens
    assert last.completion_tokens == len(deltas) - 1
    chat_rows = [r for r in records if r.endpoint == "chat"]
    assert len(chat_rows) == 1
    assert chat_rows[0].tokens == prepared.prompt_tokens + len(deltas) - 1
    assert chat_rows[0].audio_seconds == pytest.approx(1.5)
    assert chat_rows[0].engine == "fake-chat"
    assert [r.endpoint for r in records] == ["chat"]  # the audio is counted once


# --------------------------------------------------------------------------- helpers


def test_transcript_block_without_speech() -> None:
    block = transcript_block(2, None, 4.04, [Segment("  ", 0.0, 4.0)])
    assert block == (
        '<audio_transcript index=2 language="unknown" duration="4.0s">\n'
        "(no speech recognised)\n"
        "</audio_transcript>"
    )


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"fLaC\x00", "flac"),
        (b"OggS\x00", "ogg"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"\x1a\x45\xdf\xa3\x01", "webm"),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_sniff_format(head: bytes, name: str | None) -> None:
    assert sniff_format(head) == name
