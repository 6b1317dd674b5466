"""eSpeak NG: the built-in formant synthesiser. No download: the library and its data come with
the ``espeakng-loader`` wheel and are driven through ctypes.

It sounds robotic but speaks about a hundred languages, instantly, on any CPU, so voxserve always
has a voice. The library keeps one global state per process and is not thread-safe: every call
goes through one lock, and the engine runs one synthesis at a time.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import espeakng_loader
import numpy as np

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.languages import primary_language
from voxserve.engines.protocol import PresetVoice, SynthesisRequest, TTSCapabilities
from voxserve.errors import EngineFailure, Unsupported, VoiceNotFound

CLONING_HINT = "Voice cloning needs the pocket-tts engine: pip install 'voxserve[pocket-tts]'"
DEFAULT_VOICE = "en-us"
BASE_WPM = 175
"""eSpeak's natural pace in words per minute; ``speed`` scales it."""
MIN_WPM, MAX_WPM = 80, 450
"""eSpeak NG's rate range: speeds below 0.46 or above 2.57 are clamped to it."""

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_BUFFER_MS = 200
"""Audio per synth callback: the first chunk of a stream is at most this long."""
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
"""Keep the pause after the last sentence: texts are spoken sentence by sentence and joined."""
_POS_CHARACTER = 1
_RATE = 1

_THREE_LETTER = {"cmn": "zh", "yue": "zh", "hak": "zh", "hyw": "hy"}
"""eSpeak language codes with an ISO-639-1 equivalent that their first subtag does not give."""


class _Voice(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_Sink = Callable[[Samples], bool]
"""Receives each buffer of audio; returns False to stop the synthesis."""


@dataclass(frozen=True)
class _VoiceInfo:
    voice: PresetVoice
    codes: tuple[str, ...]
    """eSpeak's own language codes (``en-us``, ``en``), best first."""


class _Library:
    """The process-wide libespeak-ng, initialised once. Call everything under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare()
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EngineFailure("eSpeak NG failed to initialise.")
        self.sample_rate: int = rate
        self._sink: _Sink | None = None
        # Kept on the instance: ctypes must not free the callback while C holds it.
        self._callback = _SynthCallback(self._on_audio)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _declare(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_ListVoices.argtypes = (ctypes.c_void_p,)
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = (
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        lib.espeak_Synth.restype = ctypes.c_int

    def voices(self) -> list[_VoiceInfo]:
        listed = self._lib.espeak_ListVoices(None)
        found: dict[str, _VoiceInfo] = {}
        i = 0
        while listed[i]:
            info = _voice_info(listed[i].contents)
            found.setdefault(info.voice.id, info)
            i += 1
        return list(found.values())

    def speak(self, voice: str, wpm: int, text: str, sink: _Sink) -> None:
        """Synthesize ``text`` (blocking), passing each buffer of audio to ``sink``."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise VoiceNotFound(f"espeak:{voice}")
        self._lib.espeak_SetParameter(_RATE, wpm, 0)
        data = text.encode("utf-8")
        self._sink = sink
        try:
            flags = _CHARS_UTF8 | _ENDPAUSE
            status = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None
            )
        finally:
            self._sink = None
        if status != 0:
            raise EngineFailure("eSpeak NG could not synthesize the text.")

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        # Returning 1 stops the synthesis. Never raise here: ctypes would only print it.
        sink = self._sink
        if sink is None:
            return 1
        if count <= 0 or not wav:
            return 0
        pcm = np.ctypeslib.as_array(wav, shape=(count,))
        try:
            keep_going = sink(pcm.astype(np.float32) / 32768.0)
        except Exception:
            return 1
        return 0 if keep_going else 1


_shared: _Library | None = None
_shared_lock = threading.Lock()


def _library() -> _Library:
    # One per process, because libespeak-ng itself keeps a single global state.
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _Library()
        return _shared


class EspeakEngine:
    """A ``TTSEngine`` speaking with eSpeak NG; every eSpeak voice is a preset (id ``en-us``)."""

    name = "espeak"
    version = "1"

    def __init__(self) -> None:
        self._voices: list[_VoiceInfo] | None = None
        self._caps: TTSCapabilities | None = None

    def capabilities(self) -> TTSCapabilities:
        if self._caps is None:
            voices = tuple(info.voice for info in self._voice_infos())
            languages = sorted({lang for voice in voices for lang in voice.languages})
            self._caps = TTSCapabilities(
                sample_rate=_library().sample_rate,
                voices=voices,
                languages=tuple(languages),
                cloning=False,
                max_concurrency=1,
            )
        return self._caps

    def load(self) -> None:
        _library()

    def unload(self) -> None:
        # Nothing worth freeing: the library and its data take a few megabytes, and tearing the
        # process-wide state down under other users of it would be unsafe.
        pass

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        if request.voice_state is not None:
            raise Unsupported(CLONING_HINT)
        voice = self._pick_voice(request)
        text = request.text.strip()
        if not text:
            return
        wpm = speed_to_wpm(request.speed)
        yield from _stream(lambda sink: _locked_speak(voice, wpm, text, sink))

    def clone_voice(self, reference: AudioClip) -> bytes:
        raise Unsupported(CLONING_HINT)

    def _voice_infos(self) -> list[_VoiceInfo]:
        if self._voices is None:
            library = _library()
            with library.lock:
                self._voices = library.voices()
        return self._voices

    def _pick_voice(self, request: SynthesisRequest) -> str:
        infos = self._voice_infos()
        if request.voice is not None:
            if not any(info.voice.id == request.voice for info in infos):
                raise VoiceNotFound(f"espeak:{request.voice}")
            return request.voice
        if request.language is None:
            return DEFAULT_VOICE
        return _voice_for_language(infos, request.language)


def speed_to_wpm(speed: float) -> int:
    """Words per minute for a ``speed`` factor, within eSpeak's range."""
    return max(MIN_WPM, min(MAX_WPM, round(BASE_WPM * speed)))


def iso639_1(code: str) -> str:
    """``en-us`` -> ``en``, ``cmn`` -> ``zh``; codes without a two-letter form stay as they are."""
    primary = primary_language(code)
    return _THREE_LETTER.get(primary, primary)


def _voice_for_language(infos: list[_VoiceInfo], language: str) -> str:
    wanted = language.lower().replace("_", "-")
    if wanted in ("en", "en-us"):
        return DEFAULT_VOICE
    for match in (
        lambda info: info.voice.id == wanted,
        lambda info: wanted in info.codes,
        lambda info: iso639_1(wanted) in info.voice.languages,
    ):
        for info in infos:
            if match(info):
                return info.voice.id
    raise Unsupported(f"The espeak engine has no voice for language '{language}'.")


def _voice_info(raw: _Voice) -> _VoiceInfo:
    identifier = (raw.identifier or b"").decode()
    codes = tuple(code for _, code in sorted(_language_codes(raw.languages)))
    languages = tuple(dict.fromkeys(iso639_1(code) for code in codes))
    gender = {1: "male", 2: "female"}.get(raw.gender)
    voice = PresetVoice(
        id=identifier.rsplit("/", 1)[-1].lower(),
        name=(raw.name or b"").decode().strip(),
        languages=languages,
        gender=gender,  # type: ignore[arg-type]
    )
    return _VoiceInfo(voice, codes)


def _language_codes(address: int | None) -> list[tuple[int, str]]:
    """Parse eSpeak's language list: (priority byte, NUL-terminated code) pairs, then a 0 byte."""
    found: list[tuple[int, str]] = []
    if not address:
        return found
    while (priority := ctypes.string_at(address, 1)[0]) != 0:
        code = ctypes.string_at(address + 1)
        found.append((priority, code.decode()))
        address += len(code) + 2
    return found


def _locked_speak(voice: str, wpm: int, text: str, sink: _Sink) -> None:
    library = _library()
    with library.lock:
        library.speak(voice, wpm, text, sink)


_END = object()


def _stream(speak: Callable[[_Sink], None]) -> Iterator[Samples]:
    """Run the blocking ``speak`` in a thread of its own and yield its audio as it comes.

    eSpeak pushes audio into a callback from inside one blocking call, so this is the only way
    to hand out the first sentence before the last is made. Closing the iterator stops the
    synthesis at the next buffer.
    """
    buffers: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()

    def sink(samples: Samples) -> bool:
        buffers.put(samples)
        return not stop.is_set()

    def run() -> None:
        try:
            speak(sink)
        except BaseException as exc:
            buffers.put(exc)
        finally:
            buffers.put(_END)

    worker = threading.Thread(target=run, name="espeak-synth", daemon=True)
    worker.start()
    try:
        yield from _drain(buffers)
    finally:
        stop.set()
        worker.join()


def _drain(buffers: queue.SimpleQueue[object]) -> Iterator[Samples]:
    """Yield everything queued so far as one chunk, waiting only for the first piece."""
    while True:
        pending = [buffers.get()]
        while not buffers.empty():
            pending.append(buffers.get_nowait())
        chunks = [p for p in pending if isinstance(p, np.ndarray)]
        if chunks:
            yield np.concatenate(chunks)
        for item in pending:
            if isinstance(item, BaseException):
                raise item
            if item is _END:
                return
