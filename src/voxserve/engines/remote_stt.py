"""Transcription by a remote OpenAI-compatible ``/audio/transcriptions`` server (vLLM, OpenAI,
speaches...). The clip goes up as 16-bit WAV; ``verbose_json`` comes back and is mapped onto the
protocol's segments and words."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from websockets.sync.client import ClientConnection

from voxserve.audio.process import to_mono_wav
from voxserve.audio.types import AudioClip
from voxserve.engines.protocol import (
    Segment,
    STTCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)
from voxserve.engines.remote_http import RemoteServer, without_none
from voxserve.engines.remote_realtime import RemoteRealtimeStream, open_socket
from voxserve.engines.streaming import STTStream, stream_over_batch
from voxserve.errors import EngineFailure, Unsupported

# Whisper-style servers (OpenAI included) name the detected language in English words.
_WHISPER_LANGUAGE_TABLE = """
english:en chinese:zh german:de spanish:es russian:ru korean:ko french:fr japanese:ja
portuguese:pt turkish:tr polish:pl catalan:ca dutch:nl arabic:ar swedish:sv italian:it
indonesian:id hindi:hi finnish:fi vietnamese:vi hebrew:he ukrainian:uk greek:el malay:ms
czech:cs romanian:ro danish:da hungarian:hu tamil:ta norwegian:no thai:th urdu:ur croatian:hr
bulgarian:bg lithuanian:lt latin:la maori:mi malayalam:ml welsh:cy slovak:sk telugu:te
persian:fa latvian:lv bengali:bn serbian:sr azerbaijani:az slovenian:sl kannada:kn estonian:et
macedonian:mk breton:br basque:eu icelandic:is armenian:hy nepali:ne mongolian:mn bosnian:bs
kazakh:kk albanian:sq swahili:sw galician:gl marathi:mr punjabi:pa sinhala:si khmer:km
shona:sn yoruba:yo somali:so afrikaans:af occitan:oc georgian:ka belarusian:be tajik:tg
sindhi:sd gujarati:gu amharic:am yiddish:yi lao:lo uzbek:uz faroese:fo haitian_creole:ht
pashto:ps turkmen:tk nynorsk:nn maltese:mt sanskrit:sa luxembourgish:lb myanmar:my tibetan:bo
tagalog:tl malagasy:mg assamese:as tatar:tt hawaiian:haw lingala:ln hausa:ha bashkir:ba
javanese:jw sundanese:su cantonese:yue burmese:my valencian:ca flemish:nl haitian:ht
letzeburgesch:lb pushto:ps panjabi:pa moldavian:ro moldovan:ro sinhalese:si castilian:es
mandarin:zh
"""
_WHISPER_LANGUAGES = dict(pair.split(":", 1) for pair in _WHISPER_LANGUAGE_TABLE.split())
_LANGUAGE_CODES = frozenset(_WHISPER_LANGUAGES.values())


def normalize_language(language: object) -> str | None:
    """An ISO-639-1 code for what a server reports: ``english`` -> ``en``, ``en-US`` -> ``en``.

    Unknown names are passed on lower-cased rather than guessed at.
    """
    if not isinstance(language, str) or not language.strip():
        return None
    value = language.strip().lower()
    name = value.replace(" ", "_")
    if name in _WHISPER_LANGUAGES:
        return _WHISPER_LANGUAGES[name]
    base = value.replace("_", "-").split("-")[0]
    return base if base in _LANGUAGE_CODES else value


class RemoteSTTEngine:
    """An ``STTEngine`` that forwards to a remote ``POST {base}/audio/transcriptions`` (and
    ``/audio/translations`` for the translate task).

    The remote decodes the whole clip before answering, so ``transcribe`` blocks for the request
    and the segments it returns are already known. Hotwords have no OpenAI equivalent and are
    refused; ``prompt`` is passed on.
    """

    name = "remote-stt"
    version = "1"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        languages: Sequence[str] = (),
        word_timestamps: bool = True,
        diarization: bool = False,
        sample_rate: int = 16000,
        max_concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
        realtime: bool = False,
    ) -> None:
        self.model = model
        self.realtime = realtime
        """The server has vLLM's ``/v1/realtime`` WebSocket (see ``engines.remote_realtime``)."""
        self.timeout = timeout
        self._api_key = api_key
        self.word_timestamps = word_timestamps
        self.diarization = diarization
        self.sample_rate = sample_rate
        self.max_concurrency = max_concurrency
        self._languages = tuple(languages)
        self._server = RemoteServer(base_url, api_key=api_key, timeout=timeout, transport=transport)

    def capabilities(self) -> STTCapabilities:
        return STTCapabilities(
            languages=self._languages,
            language_detection=True,
            word_timestamps=self.word_timestamps,
            hotwords=False,
            diarization=self.diarization,
            translation=True,
            sample_rate=self.sample_rate,
            max_concurrency=self.max_concurrency,
        )

    def open_stream(self, options: TranscriptionOptions) -> STTStream:
        """A realtime stream: forwarded to the server's ``/v1/realtime`` when it has one, else
        LocalAgreement over batch decodes (which needs word timestamps).

        Raises:
            Unsupported: no realtime socket and no word timestamps.
        """
        if self.realtime:
            return RemoteRealtimeStream(
                self.connect_realtime, self.model, timeout=self.timeout, language=options.language
            )
        return stream_over_batch(
            self.name,
            self.transcribe,
            word_timestamps=self.word_timestamps,
            sample_rate=self.sample_rate,
            options=options,
            needs="word timestamps or a realtime server (VOXSERVE_REMOTE__STT_REALTIME)",
        )

    def connect_realtime(self) -> ClientConnection:
        """A socket on the server's ``/v1/realtime`` (blocking). Raises RemoteUnreachable."""
        return open_socket(self._server.base_url, self._api_key, min(self.timeout, 10.0))

    def load(self) -> None:
        """Nothing to load: the connection pool opens on the first request."""

    def unload(self) -> None:
        self._server.close()

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        if options.hotwords:
            raise Unsupported("The remote transcription server does not take hotwords.")
        if options.word_timestamps and not self.word_timestamps:
            raise Unsupported("The remote transcription server is set up without word timestamps.")
        translate = options.task == "translate"
        response = self._server.request(
            "POST",
            "/audio/translations" if translate else "/audio/transcriptions",
            files={"file": ("audio.wav", to_mono_wav(audio), "audio/wav")},
            data=self._translation_form(options) if translate else self._form(options),
        )
        data = _json_or_text(response)
        info = TranscriptionInfo(
            language=normalize_language(data.get("language")) or options.language,
            language_probability=None,
            duration=audio.duration,
        )
        segments = _segments(data, audio.duration, options.word_timestamps)
        return info, iter(segments)

    def _form(self, options: TranscriptionOptions) -> dict[str, Any]:
        if options.diarize:
            # OpenAI's diarizing shape: segments carry ``speaker``; no word timings.
            return without_none(
                model=self.model,
                language=options.language,
                prompt=options.prompt,
                response_format="diarized_json",
                chunking_strategy="auto",
            )
        granularities = ["segment", "word"] if options.word_timestamps else ["segment"]
        return without_none(
            model=self.model,
            language=options.language,
            temperature=None if options.temperature is None else str(options.temperature),
            prompt=options.prompt,
            response_format="verbose_json",
            **{"timestamp_granularities[]": granularities},
        )

    def _translation_form(self, options: TranscriptionOptions) -> dict[str, Any]:
        # OpenAI's translations take neither a language nor timestamp granularities.
        return without_none(
            model=self.model,
            temperature=None if options.temperature is None else str(options.temperature),
            prompt=options.prompt,
            response_format="verbose_json",
        )


def _json_or_text(response: httpx.Response) -> dict[str, Any]:
    """The JSON answer; a server that ignores ``verbose_json`` may answer plain text."""
    try:
        data = response.json()
    except ValueError:
        return {"text": response.text}
    if not isinstance(data, dict):
        raise EngineFailure("The remote transcription server answered an unexpected shape.")
    return data


def _segments(data: dict[str, Any], duration: float, want_words: bool) -> list[Segment]:
    words = [_word(item) for item in data.get("words") or []]
    raw = [item for item in data.get("segments") or [] if isinstance(item, dict)]
    if not raw:
        # Plain {"text"}: one segment over the whole clip.
        text = str(data.get("text") or "")
        if not text.strip():
            return []
        return [Segment(text, 0.0, duration, tuple(words) if want_words else None)]
    bounds = [
        (_seconds(item.get("start"), 0.0), _seconds(item.get("end"), duration)) for item in raw
    ]
    # OpenAI lists words beside the segments, not inside them: place each by its midpoint.
    placed = _place_words(words, [end for _, end in bounds])
    segments = []
    for item, (start, end), outside in zip(raw, bounds, placed, strict=True):
        nested = item.get("words")
        seg_words = [_word(w) for w in nested] if isinstance(nested, list) else outside
        text = str(item.get("text") or "")
        timed = tuple(seg_words) if want_words else None
        segments.append(Segment(text, start, end, timed, speaker=_speaker(item)))
    return segments


def _speaker(item: dict[str, Any]) -> str | None:
    """The segment's speaker: OpenAI's ``speaker`` or Mistral's ``speaker_id``."""
    value = item.get("speaker", item.get("speaker_id"))
    return str(value) if value is not None else None


def _place_words(words: list[Word], ends: list[float]) -> list[list[Word]]:
    placed: list[list[Word]] = [[] for _ in ends]
    index = 0
    for word in sorted(words, key=lambda w: w.start):
        middle = (word.start + word.end) / 2
        while index < len(ends) - 1 and middle >= ends[index]:
            index += 1
        placed[index].append(word)
    return placed


def _word(item: Any) -> Word:
    if not isinstance(item, dict):
        raise EngineFailure("The remote transcription server answered an unexpected word shape.")
    probability = item.get("probability")
    return Word(
        word=str(item.get("word", "")),
        start=_seconds(item.get("start"), 0.0),
        end=_seconds(item.get("end"), 0.0),
        probability=float(probability) if isinstance(probability, int | float) else None,
    )


def _seconds(value: object, default: float) -> float:
    if not isinstance(value, int | float | str):
        return default
    try:
        return float(value)
    except ValueError:
        return default
