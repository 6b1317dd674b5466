"""The one safe fetcher for URLs a client gives us: transcription ``file_url``, chat
``input_audio`` URLs, the cloning API's ``voice_url``. Core sees it through the
``core.fetching.UrlFetcher`` protocol only.

Every refusal is an ``InvalidRequest`` (400) whose message starts with the field name and says why:

- only ``http`` and ``https``; no credentials in the URL; at most 2083 characters;
- every address the host resolves to must be public. Refused: loopback, private (RFC 1918,
  fc00::/7), link-local, multicast, unspecified, reserved, shared (100.64.0.0/10) and anything
  else Python does not call globally routable, also inside IPv6 forms that reach an IPv4 address
  (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4). Numeric hosts in non-canonical spellings
  (``2130706433``, ``0x7f.1``, ``127.1``) are refused outright. ``private_networks`` (CIDR
  ranges; ``allow_private_addresses`` for every private range) lifts the range rule inside those
  ranges, never for link-local or metadata addresses (``net.ranges``); every other rule stays;
- redirects are followed by hand, at most ``max_redirects``, each hop checked by the same rules;
- the body is streamed to a temporary file (``Fetched.body``, never whole in memory) and dropped
  once it passes ``max_bytes``, counted after any
  ``Content-Encoding`` is undone (a larger ``Content-Length`` is refused before reading);
- one ``timeout_seconds`` deadline covers resolution, every hop and the body;
- any non-2xx answer is refused, naming the status.

DNS rebinding: each hop's host is resolved once, the addresses are vetted, and the connection is
made to those addresses (``_PinnedBackend``), never to a second lookup; the ``Host`` header, TLS
SNI and certificate check still use the name from the URL. No proxy or ``.netrc`` from the
environment is used (a proxy would resolve names itself); ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are
honoured for private CAs.

Residual risks: with an injected ``transport`` (tests) that transport dials for itself, so the
addresses are vetted but not pinned; ports are not restricted, so public hosts may be reached on
any port.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator

import httpcore
import httpx

from voxserve import __version__
from voxserve.core.fetching import Fetched, new_spool, spool_chunks
from voxserve.errors import InvalidRequest
from voxserve.net.ranges import PRIVATE_NETWORKS, IPNetwork, allowed, parse_networks
from voxserve.settings import FetchSettings

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP addresses``; raises ``OSError`` when the name does not resolve."""
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2083
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADERS = {"accept": "*/*", "accept-encoding": "identity", "user-agent": f"voxserve/{__version__}"}
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")
_RANGE_RULE = "private, loopback and link-local addresses are refused"


class _Refused(Exception):
    """A rule refused the fetch; the message is the reason, without the field name."""


async def resolve_host(host: str, port: int) -> list[str]:
    """The default resolver: the system's ``getaddrinfo`` in the event loop's executor."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches (IPv4-mapped, NAT64, 6to4), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def non_public_kind(ip: IPAddress) -> str | None:
    """The kind of non-public address ``ip`` is (``"loopback"``, ``"private"``, ...), or None
    when it is a public address that may be fetched from."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None and (kind := non_public_kind(embedded)):
        return kind
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip in _NAT64):
        return None  # these deliver to the public IPv4 address itself; Python calls them reserved
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared (carrier-grade NAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not publicly routable", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _check_public(ip: IPAddress, name: str | None, networks: tuple[IPNetwork, ...] = ()) -> None:
    """Refuses ``ip`` unless it is public or allowed by ``networks`` (itself and any IPv4
    address it embeds); ``name`` is the host it was resolved from."""
    kind = non_public_kind(ip)
    embedded = _embedded_ipv4(ip)
    if kind is None or allowed([ip] if embedded is None else [ip, embedded], networks):
        return
    shown = f"{ip} ({embedded})" if embedded is not None else str(ip)
    subject = f"{name} resolves to {shown}, which" if name else f"the address {shown}"
    raise _Refused(f"{subject} is {kind}; {_RANGE_RULE}")


def allowed_networks(settings: FetchSettings) -> tuple[IPNetwork, ...]:
    """The non-public ranges ``settings`` opens."""
    shorthand = PRIVATE_NETWORKS if settings.allow_private_addresses else ()
    return parse_networks([*shorthand, *settings.private_networks])


def _literal_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, or None for a name; refuses odd IPv4 spellings, which
    resolvers read as addresses although they do not look like one."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    if ":" in host:
        raise _Refused(f"the host {host} is not a valid IPv6 address")
    if _NUMERIC_HOST.fullmatch(host):
        try:
            packed = socket.inet_aton(host)
        except OSError:
            return None  # a name made of hex letters, such as cafe.be
        canonical = ipaddress.IPv4Address(packed)
        raise _Refused(
            f"the host {host} is an unusual spelling of the address {canonical}; "
            "write IPv4 addresses as four decimal numbers"
        )
    return None


def _parse_url(raw: str) -> httpx.URL:
    """``raw`` parsed and checked for length, scheme, credentials and a host."""
    if len(raw) > MAX_URL_LENGTH:
        raise _Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        raise _Refused("not a valid URL") from None
    if url.scheme not in _DEFAULT_PORTS:
        raise _Refused("only http and https URLs are accepted")
    if url.userinfo:
        raise _Refused("credentials in the URL (user:password@) are not accepted")
    if not url.raw_host:
        raise _Refused("the URL has no host")
    return url


def _redirect_target(url: httpx.URL, response: httpx.Response) -> httpx.URL:
    """Where a redirect points, checked like the first URL."""
    location = response.headers.get("location")
    if not location:
        raise _Refused(f"the server answered {response.status_code} without a Location")
    try:
        target = str(url.join(location))
    except httpx.InvalidURL:
        raise _Refused("the server redirected to an invalid URL") from None
    try:
        return _parse_url(target)
    except _Refused as exc:
        raise _Refused(f"the redirect was refused: {exc}") from None


def _port(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS[url.scheme]


def _filename(headers: httpx.Headers, url: httpx.URL) -> str | None:
    name: str | None = None
    if disposition := headers.get("content-disposition"):
        # email.message parses quoting and RFC 2231 ``filename*=UTF-8''...`` for us.
        message = email.message.Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
    if not name:
        name = url.path.rsplit("/", 1)[-1]
    # Keep the last path component only: the name may end up near a file system.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:255]
    return name if name not in ("", ".", "..") else None


def _content_type(headers: httpx.Headers) -> str | None:
    return headers.get("content-type", "").split(";")[0].strip().lower() or None


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _network_errors(url: httpx.URL) -> Iterator[None]:
    """httpx's transport errors as refusals that say what failed, without internals."""
    try:
        yield
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.ConnectError as exc:
        why = " (TLS handshake failed)" if _caused_by_tls(exc) else ""
        raise _Refused(f"could not connect to {url.host}{why}") from None
    except httpx.TransportError:
        raise _Refused(f"the connection to {url.host} failed during the download") from None


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Dials only the addresses the fetcher vetted for a host, never a fresh DNS answer."""

    def __init__(self, dialer: httpcore.AsyncNetworkBackend) -> None:
        self._dialer = dialer
        self._pins: dict[tuple[str, int], list[str]] = {}

    def pin(self, host: str, port: int, addresses: list[str]) -> None:
        self._pins[(host, port)] = addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get((host, port))
        if not addresses:  # fail closed: a host that was not vetted is never dialed
            raise httpcore.ConnectError(f"{host}:{port} was not vetted")
        failure: Exception = httpcore.ConnectError(f"no address of {host} answered")
        for address in addresses:  # in resolver order, e.g. IPv6 then IPv4
            try:
                return await self._dialer.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._dialer.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request mapping, error mapping, streaming), with its connection
    pool dialing through a ``_PinnedBackend``."""

    def __init__(self, backend: _PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context)
        # httpx has no public hook for the network backend, so its pool is replaced. Fail loudly
        # rather than fetch unpinned if a future httpx stops keeping the pool here.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport changed; cannot pin fetch connections")
        self._pool = httpcore.AsyncConnectionPool(ssl_context=ssl_context, network_backend=backend)


class HttpUrlFetcher:
    """The ``core.fetching.UrlFetcher`` of voxserve: downloads user-supplied URLs over httpx
    under the rules in this module's docstring.

    Args:
        settings: the limits and whether private addresses are allowed.
        transport: send requests through this httpx transport instead of the pinned one (tests);
            addresses are still vetted, but the transport connects on its own. Not closed here.
        resolver: how host names become addresses (default: ``resolve_host``).
        dialer: opens TCP connections to vetted addresses (default: httpcore's AnyIO backend).
            Tests swap it to reach a loopback server behind a public-looking address, so that
            everything above the socket runs as in production.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve_host,
        dialer: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._settings = settings
        self._networks = allowed_networks(settings)
        self._transport = transport
        self._resolver = resolver
        self._dialer = dialer or httpcore.AnyIOBackend()
        self._ssl_context = httpx.create_ssl_context() if transport is None else None
        self._timeouts = httpx.Timeout(settings.timeout_seconds).as_dict()

    async def fetch(self, url: str, *, field: str = "file_url") -> Fetched:
        """Download ``url``.

        Args:
            url: the URL the client sent.
            field: the request field it came from; names it in errors.

        Returns:
            The body, its media type, the final URL and a file name when one is known.

        Raises:
            InvalidRequest: a rule refused the URL or a redirect, the server answered non-2xx,
                the file is too large, the fetch timed out or the connection failed.
        """
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                return await self._fetch(_parse_url(url))
        except _Refused as exc:
            raise InvalidRequest(f"{field}: {exc}", field=field) from None
        except TimeoutError:
            limit = self._settings.timeout_seconds
            raise InvalidRequest(f"{field}: timed out after {limit:g} s", field=field) from None

    async def _fetch(self, url: httpx.URL) -> Fetched:
        if self._transport is not None:
            return await self._follow(url, self._transport, None)
        assert self._ssl_context is not None
        backend = _PinnedBackend(self._dialer)
        async with _PinnedTransport(backend, self._ssl_context) as transport:
            return await self._follow(url, transport, backend)

    async def _follow(
        self, url: httpx.URL, transport: httpx.AsyncBaseTransport, backend: _PinnedBackend | None
    ) -> Fetched:
        """Request ``url``, following redirects by hand so every hop is checked."""
        for hop in range(self._settings.max_redirects + 1):
            try:
                addresses = await self._vet(url)
            except _Refused as exc:
                raise (_Refused(f"the redirect was refused: {exc}") if hop else exc) from None
            if backend is not None:
                backend.pin(url.raw_host.decode("ascii"), _port(url), addresses)
            request = httpx.Request(
                "GET", url, headers=_HEADERS, extensions={"timeout": self._timeouts}
            )
            with _network_errors(url):
                response = await transport.handle_async_request(request)
                try:
                    if response.status_code not in _REDIRECTS:
                        return await self._read(response, url)
                    next_url = _redirect_target(url, response)
                finally:
                    await response.aclose()
            url = next_url
        raise _Refused(f"too many redirects (more than {self._settings.max_redirects})")

    async def _vet(self, url: httpx.URL) -> list[str]:
        """The addresses ``url``'s host may be reached at; refuses if any of them is not public."""
        host = url.raw_host.decode("ascii")
        literal = _literal_address(host.removesuffix("."))
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = await self._resolver(host, _port(url))
            except OSError:
                found = []
            if not found:
                raise _Refused(f"could not resolve the host {url.host}")
            addresses = [ipaddress.ip_address(address) for address in found]
        for ip in addresses:
            _check_public(ip, url.host if literal is None else None, self._networks)
        return [str(ip) for ip in addresses]

    async def _read(self, response: httpx.Response, url: httpx.URL) -> Fetched:
        if not 200 <= response.status_code < 300:
            raise _Refused(f"the server answered {response.status_code}")
        limit = self._settings.max_bytes
        too_large = _Refused(f"the file is larger than {limit} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = new_spool()
        try:
            size = await spool_chunks(response.aiter_bytes(), body, limit)
        except BaseException:
            body.close()
            raise
        if size > limit:
            body.close()
            raise too_large
        headers = response.headers
        return Fetched(body, size, _content_type(headers), str(url), _filename(headers, url))
