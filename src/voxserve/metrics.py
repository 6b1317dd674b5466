"""Prometheus metrics of one voxserve process: the metric objects and the gauges read at scrape.

One ``Metrics`` per set of services (built in ``bootstrap``), with a registry of its own: no
process-wide singleton, so tests and several apps in one process never mix their series. In a
multi-replica setup each replica is scraped on its own ``/metrics``.

Labels are bounded by construction: route templates (never raw paths), shape names, status
codes, engine names and kinds, endpoint names, backend names from the configuration. Never ids,
keys, voice names or user text. A leaf module like ``offload``: core and api both record here.

Series (all prefixed ``voxserve_``):

- ``http_requests_total{method,route,shape,status}``, ``http_request_duration_seconds{...}``
- ``time_to_first_audio_seconds{engine}``: from the first piece asked of the engine to its first
  audio chunk
- ``real_time_factor{kind,engine}``: processing seconds per second of audio (speech: whole
  synthesis; transcription: whole request)
- ``engine_queue_depth{engine,kind}``, ``engine_free_slots{...}``, ``engine_active{...}``,
  ``engine_loaded{...}``; ``backend_in_flight{kind,backend}``, ``backend_free_slots{...}``,
  ``backend_healthy{...}`` (once a pool registers them, see ``register_backends``)
- ``realtime_sessions``: open realtime WebSocket sessions
- ``credits_spent_total{endpoint}``
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_AUDIO_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5, 10)

EngineStatus = Callable[[], list[dict[str, Any]]]
"""The engine manager's ``status()``: name, kind, loaded, active, waiting, limit per engine."""


@dataclass(frozen=True)
class BackendState:
    """One remote backend of a pool, as its gauges show it."""

    kind: str
    """``tts``, ``stt``, ``realtime`` or ``chat``."""
    backend: str
    """A name from the configuration (e.g. ``gpu-1:8000``), never a key."""
    in_flight: int
    capacity: int
    healthy: bool


class Metrics:
    """The metric objects of one process's services, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "voxserve_http_requests",
            "HTTP requests and WebSocket sessions answered, by route template, shape and status.",
            ["method", "route", "shape", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "voxserve_http_request_duration_seconds",
            "Time from request to the end of the response (streams: their last byte).",
            ["method", "route", "shape"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_audio = Histogram(
            "voxserve_time_to_first_audio_seconds",
            "Time from asking the engine for speech to its first audio chunk.",
            ["engine"],
            buckets=FIRST_AUDIO_BUCKETS,
            registry=r,
        )
        self.rtf = Histogram(
            "voxserve_real_time_factor",
            "Processing seconds per second of audio (below 1: faster than real time).",
            ["kind", "engine"],
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.credits = Counter(
            "voxserve_credits_spent",
            "Credits charged, by endpoint.",
            ["endpoint"],
            registry=r,
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def request(self, method: str, route: str, shape: str, status: int, seconds: float) -> None:
        """Count one answered request (``route``: the template, never the raw path)."""
        self.requests.labels(method, route, shape, str(status)).inc()
        self.latency.labels(method, route, shape).observe(seconds)

    def credits_spent(self, endpoint: str, credits: int) -> None:
        if credits > 0:
            self.credits.labels(endpoint).inc(credits)

    def real_time_factor(
        self, kind: str, engine: str, seconds: float, audio_seconds: float
    ) -> None:
        if audio_seconds > 0:
            self.rtf.labels(kind, engine).observe(seconds / audio_seconds)

    def speech_timer(self, engine: str, sample_rate: int) -> SpeechTimer:
        """A timer for one speech request: first audio, then its real-time factor."""
        return SpeechTimer(self, engine, sample_rate)

    def register_engines(self, status: EngineStatus) -> None:
        """Gauges of each engine's queue and slots, read from ``status`` at every scrape."""
        rows = partial(_engine_rows, status)
        self.registry.register(_GaugeCollector(ENGINE_GAUGES, ["engine", "kind"], rows))

    def register_realtime(self, open_sessions: Callable[[], int]) -> None:
        """The open realtime sessions gauge, read from ``open_sessions`` at every scrape."""
        name = "voxserve_realtime_sessions"
        gauge = {name: "Open realtime WebSocket sessions."}
        self.registry.register(_GaugeCollector(gauge, [], lambda: [(name, [], open_sessions())]))

    def register_backends(self, states: Callable[[], Iterable[BackendState]]) -> None:
        """Gauges of a pool's remote backends (in flight, free slots, healthy), read from
        ``states`` at every scrape. A pool of remote engines calls this once when built."""
        rows = partial(_backend_rows, states)
        self.registry.register(_GaugeCollector(BACKEND_GAUGES, ["kind", "backend"], rows))


class SpeechTimer:
    """Observes time to first audio at the first chunk and the real-time factor at the end."""

    def __init__(self, metrics: Metrics, engine: str, sample_rate: int) -> None:
        self._metrics = metrics
        self._engine = engine
        self._rate = sample_rate
        self._started = time.perf_counter()
        self._samples = 0

    def chunk(self, samples: int) -> None:
        if not self._samples and samples:
            elapsed = time.perf_counter() - self._started
            self._metrics.first_audio.labels(self._engine).observe(elapsed)
        self._samples += samples

    def done(self) -> None:
        elapsed = time.perf_counter() - self._started
        self._metrics.real_time_factor("tts", self._engine, elapsed, self._samples / self._rate)


GaugeRow = tuple[str, Sequence[str], float]
"""One sample of a gauge read at scrape: the gauge's name, its label values, its value."""


class _GaugeCollector(Collector):
    """Gauges read at every scrape: one family per declared gauge (in declared order), each
    filled from the ``(name, labels, value)`` rows that ``rows`` yields for it."""

    def __init__(
        self,
        gauges: Mapping[str, str],
        labels: Sequence[str],
        rows: Callable[[], Iterable[GaugeRow]],
    ) -> None:
        self._gauges = gauges
        self._labels = labels
        self._rows = rows

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(name, text, labels=self._labels)
            for name, text in self._gauges.items()
        }
        for name, key, value in self._rows():
            families[name].add_metric(key, value)
        yield from families.values()


ENGINE_GAUGES = {
    "voxserve_engine_queue_depth": "Requests waiting for the engine.",
    "voxserve_engine_free_slots": "Requests the engine could start now.",
    "voxserve_engine_active": "Requests the engine works on.",
    "voxserve_engine_loaded": "1 when the engine is loaded.",
}
BACKEND_GAUGES = {
    "voxserve_backend_in_flight": "Requests at the backend.",
    "voxserve_backend_free_slots": "Capacity the backend has left.",
    "voxserve_backend_healthy": "1 while health checks pass.",
}


def _engine_rows(status: EngineStatus) -> Iterator[GaugeRow]:
    for s in status():
        key = [str(s["name"]), str(s["kind"])]
        yield "voxserve_engine_queue_depth", key, s["waiting"]
        yield "voxserve_engine_free_slots", key, max(s["limit"] - s["active"], 0)
        yield "voxserve_engine_active", key, s["active"]
        yield "voxserve_engine_loaded", key, 1 if s["loaded"] else 0


def _backend_rows(states: Callable[[], Iterable[BackendState]]) -> Iterator[GaugeRow]:
    for b in states():
        key = [b.kind, b.backend]
        yield "voxserve_backend_in_flight", key, b.in_flight
        yield "voxserve_backend_free_slots", key, max(b.capacity - b.in_flight, 0)
        yield "voxserve_backend_healthy", key, 1 if b.healthy else 0


def backend_states(status: Iterable[tuple[str, Mapping[str, object]]]) -> list[BackendState]:
    """Pool servers as their gauges show them, each named by host and port only (a URL's
    user, password and path never become a label)."""
    states = []
    for kind, backend in status:
        url = urlsplit(str(backend["url"]))
        name = f"{url.hostname}:{url.port}" if url.port else str(url.hostname)
        states.append(
            BackendState(
                kind=kind,
                backend=name,
                in_flight=int(cast(int, backend["in_flight"])),
                capacity=int(cast(int, backend["capacity"])),
                healthy=bool(backend["healthy"]),
            )
        )
    return states
