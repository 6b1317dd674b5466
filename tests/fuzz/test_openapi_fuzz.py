"""Schemathesis over ``/openapi.json``: every operation, fuzzed with a fixed seed and a bounded
number of examples, against a live server with the fake engines, on SQLite and PostgreSQL; no
request may answer a server error (#14). Run alone with ``pytest -m fuzz tests/fuzz``.

The operations are driven through schemathesis's Python API (its pytest plugin does not load
under this pytest); each example is checked with its ``not_a_server_error`` rule (any 5xx
fails, 503 included: no engine is missing here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.backends import BACKENDS, backend_server
from tests.support.backends import postgres_server_url as postgres_server_url  # a fixture
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.fuzz
EXAMPLES = 80
"""Examples per operation and backend: bounds the run to a few minutes."""
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # a fixed seed: the same requests on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(params=BACKENDS)
def fuzz_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    yield from backend_server(request, tmp_path)


def server_errors(operation: schemathesis.APIOperation, sent: list[int]) -> list[str]:
    """The examples of ``operation`` that answered 5xx, as curl commands with the status; the
    status of every request is appended to ``sent``."""
    found: list[str] = []

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(timeout=30)
        sent.append(response.status_code)
        if response.status_code >= 500:
            found.append(f"{response.status_code}: {case.as_curl_command()}")

    fuzz()
    return found


def test_no_request_answers_a_server_error(fuzz_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    failures: list[str] = []
    sent: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        failures += server_errors(operation, sent)
    assert not failures, "\n".join(failures[:20])
    assert len(operations) >= 30 and len(sent) >= 10 * len(operations)  # it did fuzz
    assert any(200 <= status < 300 for status in sent)
