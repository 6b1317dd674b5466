"""The remote engines against a real HTTP test double of an OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import socket
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.support.openai_stub_server import (
    SPEECH_SAMPLE_RATE,
    SPEECH_SECONDS_PER_CHARACTER,
    OpenAIStubServer,
    chat_summary,
    sine_pcm16,
)
from voxserve.audio.types import AudioClip
from voxserve.engines.protocol import (
    AudioPart,
    ChatEngine,
    ChatMessage,
    ChatRequest,
    STTEngine,
    SynthesisRequest,
    TranscriptionOptions,
    TTSEngine,
)
from voxserve.engines.remote import (
    RemoteChatEngine,
    RemoteStatusError,
    RemoteSTTEngine,
    RemoteTTSEngine,
    RemoteUnreachable,
)
from voxserve.engines.remote_stt import normalize_language
from voxserve.engines.remote_tts import Pcm16Decoder
from voxserve.errors import EngineFailure, Unsupported


@pytest.fixture
def stub() -> Iterator[OpenAIStubServer]:
    with OpenAIStubServer(voices=["alice", "bob"]) as server:
        yield server


@pytest.fixture
def unreachable_url() -> str:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _clip(seconds: float, sample_rate: int = 16000) -> AudioClip:
    t = np.arange(round(seconds * sample_rate), dtype=np.float32) / sample_rate
    return AudioClip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate)


# --------------------------------------------------------------------------- text-to-speech


def test_tts_streams_the_remote_pcm_as_float32_chunks(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "voxtral-tts", api_key="secret")
    text = "Hello from the remote engine."

    chunks = list(engine.synthesize(SynthesisRequest(text)))

    assert isinstance(engine, TTSEngine)
    assert len(chunks) > 1
    assert all(chunk.dtype == np.float32 for chunk in chunks)
    audio = np.concatenate(chunks)
    expected = np.frombuffer(
        sine_pcm16(len(text) * SPEECH_SECONDS_PER_CHARACTER, SPEECH_SAMPLE_RATE), dtype="<i2"
    )
    assert len(audio) / engine.capabilities().sample_rate == pytest.approx(len(text) * 0.02)
    np.testing.assert_array_equal(audio, expected.astype(np.float32) / 32768.0)
    sent = stub.last("/v1/audio/speech")
    assert sent.json == {
        "model": "voxtral-tts",
        "input": text,
        "voice": "alice",
        "response_format": "pcm",
        "speed": 1.0,
        "stream_format": "audio",
    }
    assert sent.headers["authorization"] == "Bearer secret"


def test_tts_speed_other_than_one_is_sent_without_asking_for_a_stream(
    stub: OpenAIStubServer,
) -> None:
    engine = RemoteTTSEngine(stub.base_url, "voxtral-tts")

    audio = np.concatenate(list(engine.synthesize(SynthesisRequest("Faster.", "bob", speed=2.0))))

    assert len(audio) == round(len("Faster.") * 0.02 / 2 * SPEECH_SAMPLE_RATE)
    sent = stub.last("/v1/audio/speech").json
    assert sent["voice"] == "bob"
    assert sent["speed"] == 2.0
    assert "stream_format" not in sent
    assert "authorization" not in stub.last("/v1/audio/speech").headers


def test_tts_a_dropped_stream_ends_cleanly(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "voxtral-tts")
    stream = engine.synthesize(SynthesisRequest("A long sentence that makes plenty of audio." * 5))

    first = next(stream)
    stream.close()

    assert len(first) > 0


def test_tts_voices_come_from_the_remote_once_loaded(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "m", voices=["configured"], languages=["en"])
    assert [voice.id for voice in engine.capabilities().voices] == ["configured"]
    assert stub.requests == []  # capabilities never waits on the network

    engine.load()

    caps = engine.capabilities()

    assert [voice.id for voice in caps.voices] == ["alice", "bob"]
    assert caps.voices[0].languages == ("en",)
    assert caps.sample_rate == 24000
    assert not caps.cloning


def test_tts_voices_survive_unloading_and_are_asked_again_on_load(
    stub: OpenAIStubServer,
) -> None:
    engine = RemoteTTSEngine(stub.base_url, "m")
    engine.load()
    engine.unload()
    assert [voice.id for voice in engine.capabilities().voices] == ["alice", "bob"]

    stub.voices = ["carol"]
    engine.load()
    assert [voice.id for voice in engine.capabilities().voices] == ["carol"]
    assert len([r for r in stub.requests if r.path == "/v1/audio/voices"]) == 2


def test_tts_voices_fall_back_to_the_configured_list_without_the_endpoint() -> None:
    with OpenAIStubServer(voices=None) as stub:
        engine = RemoteTTSEngine(stub.base_url, "m", voices=["casual_male", "neutral_female"])

        assert [voice.id for voice in engine.capabilities().voices] == [
            "casual_male",
            "neutral_female",
        ]
        list(engine.synthesize(SynthesisRequest("Hi.")))
        assert stub.last("/v1/audio/speech").json["voice"] == "casual_male"


def test_tts_voices_fall_back_when_the_remote_is_down(unreachable_url: str) -> None:
    engine = RemoteTTSEngine(unreachable_url, "m", voices=["fallback"])
    engine.load()

    assert [voice.id for voice in engine.capabilities().voices] == ["fallback"]


def test_tts_cloning_sends_the_reference_clip_as_ref_audio(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "voxtral-tts", cloning=True)
    reference = _clip(2.5, sample_rate=24000)

    state = engine.clone_voice(reference)
    list(engine.synthesize(SynthesisRequest("Cloned.", voice_state=state)))

    with wave.open(io.BytesIO(state)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() == len(reference.samples)
    ref_audio = stub.last("/v1/audio/speech").json["ref_audio"]
    prefix = "data:audio/wav;base64,"
    assert ref_audio.startswith(prefix)
    assert base64.b64decode(ref_audio[len(prefix) :]) == state
    assert engine.capabilities().cloning


def test_tts_without_cloning_refuses_voice_states(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "m")

    with pytest.raises(Unsupported):
        engine.clone_voice(_clip(1.0))
    with pytest.raises(Unsupported):
        list(engine.synthesize(SynthesisRequest("Hi.", voice_state=b"RIFF")))


def test_tts_error_status_becomes_engine_failure(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "m")
    stub.fail("/v1/audio/speech", 400, "Input text cannot be empty")

    with pytest.raises(EngineFailure) as caught:
        list(engine.synthesize(SynthesisRequest("")))

    assert isinstance(caught.value, RemoteStatusError)
    assert caught.value.remote_status == 400
    assert caught.value.message == "The remote server answered 400: Input text cannot be empty"


def test_error_messages_from_the_remote_are_kept_short(stub: OpenAIStubServer) -> None:
    engine = RemoteTTSEngine(stub.base_url, "m")
    stub.fail("/v1/audio/speech", 500, "Traceback " * 2000)

    with pytest.raises(EngineFailure) as caught:
        list(engine.synthesize(SynthesisRequest("Hi.")))

    assert caught.value.remote_status == 500  # type: ignore[attr-defined]
    assert len(caught.value.message) < 260


def test_tts_unreachable_remote_is_reported(unreachable_url: str) -> None:
    engine = RemoteTTSEngine(unreachable_url, "m", voices=["v"])

    with pytest.raises(RemoteUnreachable, match="unreachable") as caught:
        list(engine.synthesize(SynthesisRequest("Hi.")))

    assert isinstance(caught.value, EngineFailure)
    assert caught.value.status == 503


def test_pcm16_decoder_keeps_samples_split_across_chunks() -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 12345], dtype="<i2")
    data = samples.tobytes()
    decoder = Pcm16Decoder()

    pieces = [decoder.feed(data[i : i + 3]) for i in range(0, len(data), 3)]

    np.testing.assert_array_equal(np.concatenate(pieces), samples / 32768.0)
    assert decoder.leftover == 0


# --------------------------------------------------------------------------- speech-to-text


@pytest.mark.parametrize("words_in_segments", [False, True])
def test_stt_maps_verbose_json_segments_and_words(words_in_segments: bool) -> None:
    with OpenAIStubServer(words_in_segments=words_in_segments) as stub:
        engine = RemoteSTTEngine(stub.base_url, "whisper-large-v3", api_key="k")
        options = TranscriptionOptions(word_timestamps=True, prompt="Voxtral", temperature=0.2)

        info, segments_iter = engine.transcribe(_clip(2.0), options)
        segments = list(segments_iter)

    assert isinstance(engine, STTEngine)
    assert info.language == "en"
    assert info.duration == pytest.approx(2.0)
    text = "".join(segment.text for segment in segments)
    assert text.strip() == "Transcribed by whisper-large-v3. Prompt was Voxtral."
    assert len(segments) == 2
    for segment in segments:
        assert segment.words
        assert [w.word for w in segment.words] == segment.text.split()
        assert all(segment.start <= w.start and w.end <= segment.end for w in segment.words)
    assert segments[-1].end == pytest.approx(2.0)


def test_stt_sends_the_clip_as_wav_with_the_options(stub: OpenAIStubServer) -> None:
    engine = RemoteSTTEngine(stub.base_url, "voxtral-mini", api_key="k")
    options = TranscriptionOptions(language="fr", temperature=0.0, prompt="Bonjour")

    info, segments = engine.transcribe(_clip(1.5), options)

    sent = stub.last("/v1/audio/transcriptions")
    assert sent.form == {
        "model": ["voxtral-mini"],
        "language": ["fr"],
        "temperature": ["0.0"],
        "prompt": ["Bonjour"],
        "response_format": ["verbose_json"],
        "timestamp_granularities[]": ["segment"],
    }
    assert sent.headers["authorization"] == "Bearer k"
    upload = sent.files["file"]
    assert upload.content_type == "audio/wav"
    with wave.open(io.BytesIO(upload.data)) as wav:
        assert (wav.getframerate(), wav.getnframes(), wav.getsampwidth()) == (16000, 24000, 2)
    assert all(segment.words is None for segment in segments)
    assert info.language == "en"  # what the remote detected, not what was asked


def test_stt_text_only_answer_becomes_one_segment() -> None:
    with OpenAIStubServer(verbose=False) as stub:
        engine = RemoteSTTEngine(stub.base_url, "m")

        info, segments = engine.transcribe(_clip(3.0), TranscriptionOptions(language="de"))

    assert [(s.text, s.start, s.end) for s in segments] == [("Transcribed by m.", 0.0, 3.0)]
    assert info.language == "de"


def test_stt_refuses_hotwords(stub: OpenAIStubServer) -> None:
    engine = RemoteSTTEngine(stub.base_url, "m")

    assert not engine.capabilities().hotwords
    with pytest.raises(Unsupported):
        engine.transcribe(_clip(1.0), TranscriptionOptions(hotwords=("Voxtral",)))


def test_stt_error_status_becomes_engine_failure(stub: OpenAIStubServer) -> None:
    engine = RemoteSTTEngine(stub.base_url, "m")
    stub.fail("/v1/audio/transcriptions", 413, "File too large")

    with pytest.raises(EngineFailure, match="413: File too large"):
        engine.transcribe(_clip(1.0), TranscriptionOptions())


def test_stt_unreachable_remote_is_reported(unreachable_url: str) -> None:
    with pytest.raises(RemoteUnreachable):
        RemoteSTTEngine(unreachable_url, "m").transcribe(_clip(1.0), TranscriptionOptions())


@pytest.mark.parametrize(
    ("reported", "code"),
    [("english", "en"), ("French", "fr"), ("en", "en"), ("pt-BR", "pt"), ("", None)],
)
def test_stt_language_names_are_normalised(reported: str, code: str | None) -> None:
    assert normalize_language(reported) == code


# --------------------------------------------------------------------------- chat


def test_chat_streams_deltas_then_the_usage(stub: OpenAIStubServer) -> None:
    engine = RemoteChatEngine(stub.base_url, "voxtral-small", api_key="k", context_length=8192)
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hello there"))
    request = ChatRequest(messages, temperature=0.5, max_tokens=50, stop=("zzz",))

    deltas = list(engine.complete(request))

    assert isinstance(engine, ChatEngine)
    *pieces, final = deltas
    assert len(pieces) > 1
    assert all(piece.finish_reason is None for piece in pieces)
    answer = "".join(piece.text for piece in pieces)
    sent = stub.last("/v1/chat/completions").json
    assert answer == chat_summary(sent["messages"])
    assert final.text == ""
    assert final.finish_reason == "stop"
    assert (final.prompt_tokens or 0) > 0
    assert final.completion_tokens == len(answer.split())
    assert sent == {
        "model": "voxtral-small",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "max_tokens": 50,
        "stop": ["zzz"],
    }


def test_chat_length_finish_reason_is_passed_on(stub: OpenAIStubServer) -> None:
    engine = RemoteChatEngine(stub.base_url, "m")

    *pieces, final = engine.complete(
        ChatRequest((ChatMessage("user", "one two three four"),), max_tokens=3)
    )

    assert len(pieces) == 3
    assert (final.finish_reason, final.completion_tokens) == ("length", 3)


def _audio_message() -> ChatMessage:
    part = AudioPart(clip=_clip(2.0), encoded=b"ID3 not really an mp3", format="mp3")
    return ChatMessage("user", "What is said here?", audio=(part,))


def test_audio_native_chat_sends_input_audio_parts_unchanged(stub: OpenAIStubServer) -> None:
    engine = RemoteChatEngine(stub.base_url, "voxtral-small", audio_native=True)

    answer = "".join(d.text for d in engine.complete(ChatRequest((_audio_message(),))))

    assert stub.last("/v1/chat/completions").json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is said here?"},
                {
                    "type": "input_audio",
                    "input_audio": {
                        "data": base64.b64encode(b"ID3 not really an mp3").decode(),
                        "format": "mp3",
                    },
                },
            ],
        }
    ]
    assert answer.endswith("Parts: input_audio:mp3")
    assert engine.capabilities().audio_input


def test_cascade_chat_sends_only_text(stub: OpenAIStubServer) -> None:
    engine = RemoteChatEngine(stub.base_url, "llama", audio_native=False)

    list(engine.complete(ChatRequest((_audio_message(),))))

    sent = stub.last("/v1/chat/completions").json["messages"]
    assert sent == [{"role": "user", "content": "What is said here?"}]
    assert not engine.capabilities().audio_input


def test_chat_token_estimate_counts_text_and_native_audio(stub: OpenAIStubServer) -> None:
    short = ChatRequest((ChatMessage("user", "Hi"),))
    long = ChatRequest((ChatMessage("user", "Hi " * 400),))
    native = RemoteChatEngine(stub.base_url, "m", audio_native=True)
    cascade = RemoteChatEngine(stub.base_url, "m", context_length=4096)

    assert 0 < cascade.count_tokens(short) < cascade.count_tokens(long)
    audio = ChatRequest((_audio_message(),))
    assert native.count_tokens(audio) >= cascade.count_tokens(audio) + 25
    assert cascade.capabilities().context_length == 4096


def test_chat_error_status_becomes_engine_failure(stub: OpenAIStubServer) -> None:
    engine = RemoteChatEngine(stub.base_url, "m")
    stub.fail("/v1/chat/completions", 400, "This model's maximum context length is 32768 tokens.")

    with pytest.raises(EngineFailure, match="400: This model's maximum context length") as caught:
        list(engine.complete(ChatRequest((ChatMessage("user", "Hi"),))))

    assert caught.value.remote_status == 400  # type: ignore[attr-defined]


def test_chat_error_event_mid_stream_becomes_engine_failure(stub: OpenAIStubServer) -> None:
    engine = RemoteChatEngine(stub.base_url, "m")
    stub.stream_error_after = 2
    stream = engine.complete(ChatRequest((ChatMessage("user", "tell me more"),)))

    received = [next(stream), next(stream)]
    with pytest.raises(EngineFailure, match="stub broke mid-stream"):
        next(stream)

    assert all(delta.text for delta in received)


def test_chat_unreachable_remote_is_reported(unreachable_url: str) -> None:
    engine = RemoteChatEngine(unreachable_url, "m")

    with pytest.raises(RemoteUnreachable, match="unreachable"):
        list(engine.complete(ChatRequest((ChatMessage("user", "Hi"),))))


def test_stt_translation_goes_to_the_translations_endpoint() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"language": "english", "duration": 1.0, "text": " Hello there."}
        body["segments"] = [{"start": 0.0, "end": 1.0, "text": " Hello there."}]
        return httpx.Response(200, json=body)

    engine = RemoteSTTEngine(
        "http://remote.test/v1", "whisper-1", transport=httpx.MockTransport(answer)
    )
    assert engine.capabilities().translation
    options = TranscriptionOptions(language="de", prompt="Hi", task="translate")
    info, segments = engine.transcribe(_clip(1.0), options)

    assert [s.text for s in segments] == [" Hello there."]
    assert info.language == "en"
    [request] = seen
    assert request.url.path == "/v1/audio/translations"
    form = request.content.decode("latin-1")
    assert 'name="prompt"' in form and 'name="model"' in form
    # OpenAI's translations take no language and no timestamp granularities.
    assert 'name="language"' not in form and "timestamp_granularities" not in form
