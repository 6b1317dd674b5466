"""The backend pool's routing rules, on plain callables (no network but the health checks)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.openai_stub_server import OpenAIStubServer
from voxserve.engines.manager import EngineManager
from voxserve.engines.pool import Backend, BackendPool, HealthChecked
from voxserve.engines.remote_chat import RemoteChatEngine
from voxserve.engines.remote_http import RemoteServer, RemoteStatusError, RemoteUnreachable
from voxserve.engines.remote_pool import PooledChatEngine
from voxserve.errors import EngineFailure, Overloaded
from voxserve.settings import EngineSettings


def _free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _pool(*capacities: int, urls: list[str] | None = None) -> BackendPool[str]:
    urls = urls or [_free_url() for _ in capacities]
    backends = [
        Backend(url, f"b{i}", capacity, RemoteServer(url, timeout=1.0))
        for i, (url, capacity) in enumerate(zip(urls, capacities, strict=True))
    ]
    return BackendPool(backends, label="test", retry_after=7)


def _served(pool: BackendPool[str], **kwargs: object) -> str:
    result, _ = pool.run(lambda name: name, **kwargs)  # type: ignore[arg-type]
    return result


def _hold(pool: BackendPool[str]) -> Iterator[str]:
    """A started stream: its backend stays leased until the stream is closed."""
    stream = pool.stream(lambda name: iter([name, name]))
    assert next(stream)
    return stream


def test_requests_go_to_the_backend_with_fewest_in_flight() -> None:
    pool = _pool(2, 2, 2)
    held = [_hold(pool) for _ in range(4)]
    assert [b.in_flight for b in pool.backends] == [2, 1, 1]
    held[0].close()
    assert [b.in_flight for b in pool.backends] == [1, 1, 1]
    assert _served(pool) == "b1"  # a tie: the one chosen longest ago
    assert _served(pool) == "b2"


def test_capacity_is_respected_and_a_full_pool_is_overloaded_with_retry_after() -> None:
    pool = _pool(1, 2)
    held = [_hold(pool) for _ in range(3)]
    assert [b.in_flight for b in pool.backends] == [1, 2]
    with pytest.raises(Overloaded) as caught:
        _hold(pool)
    assert caught.value.retry_after == 7
    for stream in held:
        stream.close()
    assert [b.in_flight for b in pool.backends] == [0, 0]


def test_unhealthy_backends_are_skipped_and_their_capacity_is_missing() -> None:
    pool = _pool(1, 1)
    pool.backends[0].healthy = False
    held = _hold(pool)
    assert pool.backends[1].in_flight == 1
    with pytest.raises(Overloaded):
        _hold(pool)  # b0 is down: the pool is full although b0 has a free slot
    held.close()


def test_a_connection_failure_retries_once_elsewhere_and_takes_the_backend_out() -> None:
    pool = _pool(1, 1)
    calls: list[str] = []

    def call(name: str) -> str:
        calls.append(name)
        if name == "b0":
            raise RemoteUnreachable("down")
        return name

    result, backend = pool.run(call)
    assert (result, calls) == ("b1", ["b0", "b1"])
    assert backend is pool.backends[1]
    assert not pool.backends[0].healthy
    assert [b.in_flight for b in pool.backends] == [0, 0]
    pool.run(call)
    assert calls[-1] == "b1"  # b0 stays out until a health check brings it back


def test_a_503_is_retried_once_but_the_second_failure_is_answered() -> None:
    pool = _pool(1, 1, 1)
    calls: list[str] = []

    def call(name: str) -> str:
        calls.append(name)
        raise RemoteStatusError("busy", remote_status=503)

    with pytest.raises(RemoteStatusError):
        pool.run(call)
    assert len(calls) == 2
    assert all(b.healthy for b in pool.backends)  # it answered: only busy
    assert [b.in_flight for b in pool.backends] == [0, 0, 0]


@pytest.mark.parametrize("error", [RemoteStatusError("bad", remote_status=400), EngineFailure("x")])
def test_other_failures_are_not_retried(error: EngineFailure) -> None:
    pool = _pool(1, 1)
    calls: list[str] = []

    def call(name: str) -> str:
        calls.append(name)
        raise error

    with pytest.raises(type(error)):
        pool.run(call)
    assert calls == ["b0"]


def test_a_stream_is_not_replayed_once_it_has_started() -> None:
    pool = _pool(1, 1)
    calls: list[str] = []

    def call(name: str) -> Iterator[str]:
        calls.append(name)
        yield "first"
        raise RemoteUnreachable("died mid-answer")

    stream = pool.stream(call)
    assert next(stream) == "first"
    with pytest.raises(RemoteUnreachable):
        next(stream)
    assert calls == ["b0"]
    assert [b.in_flight for b in pool.backends] == [0, 0]


def test_two_unreachable_backends_both_leave_the_rotation() -> None:
    pool = _pool(1, 1, 1)

    def call(name: str) -> str:
        if name != "b2":
            raise RemoteUnreachable("down")
        return name

    with pytest.raises(RemoteUnreachable):
        pool.run(call)
    assert [b.healthy for b in pool.backends] == [False, False, True]
    assert _served(pool) == "b2"


def test_a_failure_with_no_other_backend_answers_the_original_error() -> None:
    pool = _pool(1)

    def call(name: str) -> str:
        raise RemoteUnreachable("down")

    with pytest.raises(RemoteUnreachable):
        pool.run(call)
    assert pool.backends[0].in_flight == 0


def test_an_all_down_pool_still_tries_and_a_success_brings_the_backend_back() -> None:
    pool = _pool(1, 1)
    for backend in pool.backends:
        backend.healthy = False
    assert _served(pool) == "b0"
    assert pool.backends[0].healthy and not pool.backends[1].healthy


def test_sticky_keys_prefer_the_backend_that_served_them() -> None:
    pool = _pool(2, 2)
    assert _served(pool, key="voice-a") == "b0"
    assert _served(pool) == "b1"
    assert _served(pool) == "b0"  # least recently used now
    assert _served(pool, key="voice-a") == "b0"  # sticky, although b1 was used longer ago
    assert _served(pool, key="voice-b") == "b1"
    assert _served(pool, key="voice-b") == "b1"


def test_a_full_sticky_backend_gives_way() -> None:
    pool = _pool(1, 1)
    assert _served(pool, key="voice-a") == "b0"
    held = pool.stream(lambda name: iter([name]), key="other")
    assert next(held) == "b1"  # least recently used
    held.close()
    blocker = _hold(pool)  # takes b0 (b1 was just used)
    assert pool.backends[0].in_flight == 1
    assert _served(pool, key="voice-a") == "b1"
    assert pool.sticky("voice-a") is pool.backends[1]  # remembered where it went
    blocker.close()


def test_health_checks_take_failing_backends_out_and_bring_them_back() -> None:
    with OpenAIStubServer() as up, OpenAIStubServer() as flaky:
        pool = _pool(1, 1, 1, urls=[up.base_url, flaky.base_url, _free_url()])
        pool.check_health()
        assert [b.healthy for b in pool.backends] == [True, True, False]
        flaky.fail("/v1/models", 500)
        pool.check_health()
        assert [b.healthy for b in pool.backends] == [True, False, False]
        pool.check_health()
        assert [b.healthy for b in pool.backends] == [True, True, False]
        flaky.fail("/v1/models", 401)  # up, but refusing the key: requests will say why
        pool.check_health()
        assert pool.backends[1].healthy
        assert up.last("/v1/models").method == "GET"
        pool.close()


def test_pooled_engines_are_health_checked_and_keep_the_single_engines_name() -> None:
    url = _free_url()
    backends = [
        Backend(url, RemoteChatEngine(url, max_concurrency=c), c, RemoteServer(url)) for c in (2, 3)
    ]
    engine = PooledChatEngine(BackendPool(backends, label="chat", retry_after=1))
    assert isinstance(engine, HealthChecked)
    assert engine.name == "remote-chat"
    assert engine.capabilities().max_concurrency == 5


async def test_closing_the_manager_closes_the_pools_health_clients() -> None:
    with OpenAIStubServer() as server:
        url = server.base_url
        backends = [Backend(url, RemoteChatEngine(url), 1, RemoteServer(url)) for _ in range(2)]
        engine = PooledChatEngine(BackendPool(backends, label="chat", retry_after=1))
        manager = EngineManager([engine], EngineSettings(idle_unload_seconds=1))
        await manager.preload([engine.name])
        engine.check_health()
        clients = [backend.health.client for backend in backends]
        assert await manager.unload_idle(now=time.monotonic() + 60) == [engine.name]
        assert not any(client.is_closed for client in clients)  # health checks go on
        await manager.close()
        assert all(client.is_closed for client in clients)
