"""voxserve.net.fetch against real HTTP(S) servers on loopback, started by each test.

Refusals run with default settings and prove that nothing was resolved or dialed. Tests that
must reach the loopback server either allow private addresses, or keep the default rules and use a
fake public name: the resolver maps ``files.example`` to a public address, and the dialer (the
socket layer under the pinned transport) carries connections for that address to 127.0.0.1.
Everything between the two (address rules, pinning, Host header, TLS) runs as in production.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpcore
import httpx
import pytest

from voxserve.core.fetching import UrlFetcher
from voxserve.errors import InvalidRequest
from voxserve.net.fetch import MAX_URL_LENGTH, HttpUrlFetcher, non_public_kind
from voxserve.settings import FetchSettings

PUBLIC_IP = "93.184.215.14"
RANGE_RULE = "private, loopback and link-local addresses are refused"
AUDIO = b"RIFF" + bytes(range(256)) * 4


@dataclass(frozen=True)
class Hit:
    path: str
    host: str


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.hits.append(Hit(path, self.headers.get("host", "")))
        route = self.server.routes.get(path, lambda h: respond(h, b"no such file", status=404))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client hung up
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


Route = Callable[[Handler], None]


class Server(ThreadingHTTPServer):
    """A loopback HTTP server whose routes the test sets; records every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.stop = threading.Event()
        """Set at teardown: slow routes stop waiting."""

    def handle_error(self, request: object, client_address: object) -> None:
        """The fetcher hangs up early on purpose (limits, timeouts); stay quiet."""

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


def respond(
    handler: Handler, body: bytes = b"", *, status: int = 200, headers: dict[str, str] | None = None
) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: respond(h, status=status, headers={"Location": location})


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    with running(Server()) as started:
        yield started


class Dialer(httpcore.AsyncNetworkBackend):
    """The socket layer: records every dial, and carries ``PUBLIC_IP`` to loopback."""

    def __init__(self) -> None:
        self.dialed: list[tuple[str, int]] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dialed.append((host, port))
        target = "127.0.0.1" if host == PUBLIC_IP else host
        return await self._inner.connect_tcp(target, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class FakeDns:
    """A resolver with a fixed table that records its calls."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


@pytest.fixture
def dialer() -> Dialer:
    return Dialer()


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns({"files.example": [PUBLIC_IP], "internal.example": ["10.1.2.3"]})


@pytest.fixture
def make_fetcher(dialer: Dialer, dns: FakeDns) -> Callable[..., HttpUrlFetcher]:
    def make(**settings: object) -> HttpUrlFetcher:
        return HttpUrlFetcher(FetchSettings.model_validate(settings), resolver=dns, dialer=dialer)

    return make


async def refusal(fetcher: UrlFetcher, url: str, field: str = "file_url") -> str:
    with pytest.raises(InvalidRequest) as caught:
        await fetcher.fetch(url, field=field)
    assert type(caught.value) is InvalidRequest
    assert caught.value.field == field
    return caught.value.message


def assert_nothing_reached(server: Server, dialer: Dialer, dns: FakeDns) -> None:
    assert server.hits == []
    assert dialer.dialed == []
    assert dns.calls == []


# -- success --------------------------------------------------------------------------------


async def test_fetches_from_loopback_with_the_system_resolver_when_private_is_allowed(
    server: Server, dialer: Dialer
) -> None:
    server.routes["/clips/hello world.wav"] = lambda h: respond(
        h, AUDIO, headers={"Content-Type": "Audio/WAV; charset=binary"}
    )
    fetcher = HttpUrlFetcher(FetchSettings(allow_private_addresses=True), dialer=dialer)
    url = server.url("/clips/hello%20world.wav")

    fetched = await fetcher.fetch(url)

    assert fetched.read() == AUDIO
    assert (fetched.size, fetched.content_type, fetched.url) == (len(AUDIO), "audio/wav", url)
    assert fetched.filename == "hello world.wav"
    assert dialer.dialed == [("127.0.0.1", server.port)]


async def test_a_public_name_is_dialed_at_its_vetted_address_with_its_host_header(
    server: Server, dialer: Dialer, dns: FakeDns, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    server.routes["/audio.wav"] = lambda h: respond(h, AUDIO)

    fetched = await make_fetcher().fetch(server.url("/audio.wav", host="files.example"))

    assert fetched.read() == AUDIO
    assert fetched.content_type is None
    assert dns.calls == ["files.example"]
    assert dialer.dialed == [(PUBLIC_IP, server.port)]
    assert server.hits == [Hit("/audio.wav", f"files.example:{server.port}")]


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('attachment; filename="sample voice.wav"', "sample voice.wav"),
        ("attachment; filename*=UTF-8''na%C3%AFve.wav", "naïve.wav"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\temp\\clip.mp3"', "clip.mp3"),
        ("inline", "download"),
    ],
)
async def test_filename_comes_from_content_disposition_else_the_path(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher], disposition: str, filename: str
) -> None:
    server.routes["/download"] = lambda h: respond(
        h, AUDIO, headers={"Content-Disposition": disposition}
    )
    fetched = await make_fetcher().fetch(server.url("/download", host="files.example"))
    assert fetched.filename == filename


async def test_no_filename_when_neither_header_nor_path_names_one(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    server.routes["/"] = lambda h: respond(h, AUDIO)
    fetched = await make_fetcher().fetch(server.url("/", host="files.example"))
    assert fetched.filename is None


async def test_compressed_bodies_are_decoded(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    server.routes["/a.wav"] = lambda h: respond(
        h, gzip.compress(AUDIO), headers={"Content-Encoding": "gzip"}
    )
    fetched = await make_fetcher().fetch(server.url("/a.wav", host="files.example"))
    assert fetched.read() == AUDIO


async def test_an_injected_transport_is_used_and_the_rules_still_apply(dns: FakeDns) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=AUDIO))
    fetcher = HttpUrlFetcher(FetchSettings(), transport=transport, resolver=dns)

    fetched = await fetcher.fetch("https://files.example/x.wav")

    assert (fetched.read(), fetched.filename) == (AUDIO, "x.wav")
    assert "loopback" in await refusal(fetcher, "http://127.0.0.1/x.wav")


# -- URL rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/a.wav",
        "file:///etc/passwd",
        "data:audio/wav;base64,UklGRg==",
        "gopher://files.example/",
        "javascript:alert(1)",
        "/relative/a.wav",
    ],
)
async def test_only_http_and_https_are_accepted(
    server: Server,
    dialer: Dialer,
    dns: FakeDns,
    make_fetcher: Callable[..., HttpUrlFetcher],
    url: str,
) -> None:
    message = await refusal(make_fetcher(), url)
    assert message == "file_url: only http and https URLs are accepted"
    assert_nothing_reached(server, dialer, dns)


@pytest.mark.parametrize("userinfo", ["user:secret@", "user@", ":secret@"])
async def test_credentials_in_the_url_are_refused(
    server: Server,
    dialer: Dialer,
    dns: FakeDns,
    make_fetcher: Callable[..., HttpUrlFetcher],
    userinfo: str,
) -> None:
    url = server.url("/audio.wav", host=f"{userinfo}127.0.0.1")
    message = await refusal(make_fetcher(allow_private_addresses=True), url)
    assert message == "file_url: credentials in the URL (user:password@) are not accepted"
    assert_nothing_reached(server, dialer, dns)


async def test_overlong_urls_are_refused(make_fetcher: Callable[..., HttpUrlFetcher]) -> None:
    url = "https://files.example/" + "a" * MAX_URL_LENGTH
    message = await refusal(make_fetcher(), url)
    assert message == f"file_url: the URL is longer than {MAX_URL_LENGTH} characters"


async def test_the_field_names_the_error(make_fetcher: Callable[..., HttpUrlFetcher]) -> None:
    message = await refusal(make_fetcher(), "ftp://files.example/a.wav", field="voice_url")
    assert message == "voice_url: only http and https URLs are accepted"


# -- address rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("127.9.8.7", "127.9.8.7", "loopback"),
        ("[::1]", "::1", "loopback"),
        ("[::ffff:127.0.0.1]", f"{ip_address('::ffff:127.0.0.1')} (127.0.0.1)", "loopback"),
        ("[::ffff:10.0.0.1]", f"{ip_address('::ffff:10.0.0.1')} (10.0.0.1)", "private"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("[::]", "::", "unspecified"),
        ("10.0.0.1", "10.0.0.1", "private"),
        ("172.16.5.4", "172.16.5.4", "private"),
        ("192.168.1.1", "192.168.1.1", "private"),
        ("[fd12:3456::1]", "fd12:3456::1", "private"),
        ("169.254.169.254", "169.254.169.254", "link-local"),
        ("[fe80::1]", "fe80::1", "link-local"),
        ("100.64.0.1", "100.64.0.1", "shared (carrier-grade NAT)"),
        ("224.0.0.1", "224.0.0.1", "multicast"),
        ("[ff02::1]", "ff02::1", "multicast"),
        ("240.0.0.1", "240.0.0.1", "reserved"),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1 (127.0.0.1)", "loopback"),
        ("[2002:a9fe:a9fe::]", "2002:a9fe:a9fe:: (169.254.169.254)", "link-local"),
    ],
)
async def test_non_public_addresses_are_refused_before_any_connection(
    server: Server,
    dialer: Dialer,
    dns: FakeDns,
    make_fetcher: Callable[..., HttpUrlFetcher],
    host: str,
    address: str,
    kind: str,
) -> None:
    message = await refusal(make_fetcher(), server.url("/audio.wav", host=host))
    assert message == f"file_url: the address {address} is {kind}; {RANGE_RULE}"
    assert_nothing_reached(server, dialer, dns)


@pytest.mark.parametrize(
    ("host", "means"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("134744072", "8.8.8.8"),
    ],
)
async def test_unusual_ipv4_spellings_are_refused(
    server: Server,
    dialer: Dialer,
    dns: FakeDns,
    make_fetcher: Callable[..., HttpUrlFetcher],
    host: str,
    means: str,
) -> None:
    message = await refusal(
        make_fetcher(allow_private_addresses=True), server.url("/audio.wav", host=host)
    )
    assert message == (
        f"file_url: the host {host} is an unusual spelling of the address {means}; "
        "write IPv4 addresses as four decimal numbers"
    )
    assert_nothing_reached(server, dialer, dns)


async def test_a_malformed_dotted_address_is_refused(
    server: Server, dialer: Dialer, dns: FakeDns, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    url = server.url("/audio.wav", host="0177.0.0.1")  # octal: httpx itself refuses it
    assert await refusal(make_fetcher(), url) == "file_url: not a valid URL"
    assert_nothing_reached(server, dialer, dns)


async def test_a_name_resolving_to_loopback_is_refused_with_the_system_resolver(
    server: Server, dialer: Dialer
) -> None:
    fetcher = HttpUrlFetcher(FetchSettings(), dialer=dialer)
    message = await refusal(fetcher, server.url("/audio.wav", host="localhost"))
    assert message.startswith("file_url: localhost resolves to ")
    assert message.endswith(f", which is loopback; {RANGE_RULE}")
    assert server.hits == []
    assert dialer.dialed == []


async def test_a_name_is_refused_if_any_of_its_addresses_is_not_public(
    server: Server, dialer: Dialer, dns: FakeDns, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    dns.table["mixed.example"] = [PUBLIC_IP, "10.0.0.8"]
    message = await refusal(make_fetcher(), server.url("/a.wav", host="mixed.example"))
    assert (
        message == f"file_url: mixed.example resolves to 10.0.0.8, which is private; {RANGE_RULE}"
    )
    assert server.hits == []
    assert dialer.dialed == []


async def test_an_unresolvable_name_is_refused(make_fetcher: Callable[..., HttpUrlFetcher]) -> None:
    message = await refusal(make_fetcher(), "https://nowhere.example/a.wav")
    assert message == "file_url: could not resolve the host nowhere.example"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        ("2002:808:808::1", None),
        ("127.0.0.1", "loopback"),
        ("::ffff:169.254.1.1", "link-local"),
        ("100.127.255.255", "shared (carrier-grade NAT)"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),
        ("::7f00:1", "reserved"),
    ],
)
def test_non_public_kind(address: str, kind: str | None) -> None:
    assert non_public_kind(ip_address(address)) == kind


# -- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.1:{port}/secret", f"the address 127.0.0.1 is loopback; {RANGE_RULE}"),
        (
            "http://169.254.169.254/latest/meta-data/",
            f"the address 169.254.169.254 is link-local; {RANGE_RULE}",
        ),
        (
            "http://internal.example:{port}/secret",
            f"internal.example resolves to 10.1.2.3, which is private; {RANGE_RULE}",
        ),
        ("http://2130706433:{port}/secret", "the host 2130706433 is an unusual spelling"),
        ("file:///etc/passwd", "only http and https URLs are accepted"),
        ("http://user:pw@files.example:{port}/secret", "credentials in the URL"),
    ],
)
async def test_a_redirect_to_a_forbidden_target_is_refused(
    server: Server,
    dialer: Dialer,
    make_fetcher: Callable[..., HttpUrlFetcher],
    location: str,
    reason: str,
) -> None:
    server.routes["/hop"] = redirect(location.format(port=server.port))
    server.routes["/secret"] = lambda h: respond(h, b"secret")

    message = await refusal(make_fetcher(), server.url("/hop", host="files.example"))

    assert message.startswith(f"file_url: the redirect was refused: {reason}")
    assert [hit.path for hit in server.hits] == ["/hop"]
    assert dialer.dialed == [(PUBLIC_IP, server.port)]


async def test_each_hop_is_resolved_again_so_rebinding_between_hops_is_refused(
    server: Server, dialer: Dialer, dns: FakeDns, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    def rebind_then_redirect(handler: Handler) -> None:
        dns.table["files.example"] = ["127.0.0.1"]  # the attacker's DNS flips after hop one
        redirect("/audio.wav")(handler)

    server.routes["/hop"] = rebind_then_redirect
    server.routes["/audio.wav"] = lambda h: respond(h, AUDIO)

    message = await refusal(make_fetcher(), server.url("/hop", host="files.example"))

    assert message == (
        "file_url: the redirect was refused: files.example resolves to 127.0.0.1, "
        f"which is loopback; {RANGE_RULE}"
    )
    assert dns.calls == ["files.example", "files.example"]
    assert [hit.path for hit in server.hits] == ["/hop"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_followed_up_to_the_limit(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher], status: int
) -> None:
    server.routes["/r0"] = redirect("/r1", status)
    server.routes["/r1"] = redirect("r2", status)  # relative to /r1
    server.routes["/r2"] = redirect(server.url("/final", host="files.example"), status)
    server.routes["/final"] = lambda h: respond(h, AUDIO)

    fetched = await make_fetcher(max_redirects=3).fetch(server.url("/r0", host="files.example"))

    assert fetched.url == server.url("/final", host="files.example")
    assert fetched.read() == AUDIO
    assert [hit.path for hit in server.hits] == ["/r0", "/r1", "/r2", "/final"]


async def test_too_many_redirects_are_refused(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    for n in range(4):
        server.routes[f"/r{n}"] = redirect(f"/r{n + 1}")

    message = await refusal(make_fetcher(max_redirects=2), server.url("/r0", host="files.example"))

    assert message == "file_url: too many redirects (more than 2)"
    assert [hit.path for hit in server.hits] == ["/r0", "/r1", "/r2"]


async def test_no_redirects_when_the_limit_is_zero(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    server.routes["/r0"] = redirect("/final")
    message = await refusal(make_fetcher(max_redirects=0), server.url("/r0", host="files.example"))
    assert message == "file_url: too many redirects (more than 0)"


async def test_a_redirect_without_location_is_refused(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    server.routes["/r"] = lambda h: respond(h, status=302)
    message = await refusal(make_fetcher(), server.url("/r", host="files.example"))
    assert message == "file_url: the server answered 302 without a Location"


# -- server answers, size and time ----------------------------------------------------------


@pytest.mark.parametrize("status", [404, 403, 500, 204])
async def test_a_non_2xx_answer_is_refused_naming_the_status(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher], status: int
) -> None:
    if status == 204:  # 2xx, accepted, empty
        server.routes["/x"] = lambda h: respond(h, status=204)
        fetched = await make_fetcher().fetch(server.url("/x", host="files.example"))
        assert fetched.read() == b""
        return
    server.routes["/x"] = lambda h: respond(h, b"nope", status=status)
    message = await refusal(make_fetcher(), server.url("/x", host="files.example"))
    assert message == f"file_url: the server answered {status}"


async def test_a_declared_length_over_the_limit_is_refused_without_reading(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    def huge(handler: Handler) -> None:
        respond(handler, b"x" * 10, headers={"Content-Length": str(10**9)})
        server.stop.wait(10)  # reading the body would hang until the timeout

    server.routes["/big"] = huge
    started = time.monotonic()

    fetcher = make_fetcher(max_bytes=1000, timeout_seconds=5)
    message = await refusal(fetcher, server.url("/big", host="files.example"))

    assert message == "file_url: the file is larger than 1000 bytes"
    assert time.monotonic() - started < 2


def send_chunked(handler: Handler, chunks: Iterable[bytes]) -> None:
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for chunk in chunks:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


@pytest.mark.parametrize(("size", "accepted"), [(1000, True), (1001, False), (50_000, False)])
async def test_a_chunked_body_is_cut_at_the_limit(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher], size: int, accepted: bool
) -> None:
    body = bytes(i % 251 for i in range(size))
    server.routes["/c"] = lambda h: send_chunked(
        h, (body[i : i + 100] for i in range(0, size, 100))
    )
    fetcher = make_fetcher(max_bytes=1000)
    url = server.url("/c", host="files.example")

    if accepted:
        assert (await fetcher.fetch(url)).read() == body
    else:
        assert await refusal(fetcher, url) == "file_url: the file is larger than 1000 bytes"


async def test_a_server_that_never_answers_times_out(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    def slow(handler: Handler) -> None:
        server.stop.wait(10)
        respond(handler, AUDIO)

    server.routes["/slow"] = slow
    started = time.monotonic()

    message = await refusal(
        make_fetcher(timeout_seconds=0.3), server.url("/slow", host="files.example")
    )

    assert message == "file_url: timed out after 0.3 s"
    assert time.monotonic() - started < 2


async def test_the_time_limit_covers_the_whole_body(
    server: Server, make_fetcher: Callable[..., HttpUrlFetcher]
) -> None:
    def trickle(handler: Handler) -> None:  # each byte well within a read timeout, 4 s in all
        respond(handler, headers={"Content-Length": "200"})
        for _ in range(200):
            if server.stop.wait(0.02):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()

    server.routes["/trickle"] = trickle
    started = time.monotonic()

    message = await refusal(
        make_fetcher(timeout_seconds=0.5), server.url("/trickle", host="files.example")
    )

    assert message == "file_url: timed out after 0.5 s"
    assert time.monotonic() - started < 2


async def test_a_refused_connection_is_reported(dialer: Dialer) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = HttpUrlFetcher(FetchSettings(allow_private_addresses=True), dialer=dialer)

    message = await refusal(fetcher, f"http://127.0.0.1:{port}/a.wav")

    assert message == "file_url: could not connect to 127.0.0.1"


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for files.example, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=files.example"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-addext", "subjectAltName=DNS:files.example"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Server, list[str | None]]]:
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    server = Server()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with running(server) as started:
        yield started, server_names


async def test_https_is_pinned_yet_verifies_the_name_and_sends_it_as_sni(
    tls_server: tuple[Server, list[str | None]],
    certificate: tuple[Path, Path],
    dialer: Dialer,
    dns: FakeDns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, server_names = tls_server
    server.routes["/audio.wav"] = lambda h: respond(h, AUDIO)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    fetcher = HttpUrlFetcher(FetchSettings(), resolver=dns, dialer=dialer)

    fetched = await fetcher.fetch(server.url("/audio.wav", host="files.example", scheme="https"))

    assert fetched.read() == AUDIO
    assert server_names == ["files.example"]
    assert dialer.dialed == [(PUBLIC_IP, server.port)]
    assert server.hits == [Hit("/audio.wav", f"files.example:{server.port}")]


async def test_https_refuses_a_certificate_for_another_name(
    tls_server: tuple[Server, list[str | None]],
    certificate: tuple[Path, Path],
    dialer: Dialer,
    dns: FakeDns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _ = tls_server
    dns.table["other.example"] = [PUBLIC_IP]
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    fetcher = HttpUrlFetcher(FetchSettings(), resolver=dns, dialer=dialer)

    message = await refusal(fetcher, server.url("/a.wav", host="other.example", scheme="https"))

    assert message == "file_url: could not connect to other.example (TLS handshake failed)"
    assert server.hits == []
