"""Outbound HTTP for webhooks, with the address guard (README, Alerts: Outbound calls).

A webhook URL is typed by a person, so a request to it must not reach the
server's own network: loopback, private ranges, link-local (cloud metadata at
169.254.169.254), CGNAT, multicast and reserved addresses are refused unless
CLACKS_WEBHOOK_ALLOW_PRIVATE is set. The check runs on the addresses the name
resolves to, and the connection is made to the address that was checked (no
second lookup that DNS rebinding could answer differently). Redirects are
followed by hand, each target checked the same way, at most MAX_REDIRECTS.

Built on the standard library's http.client: the guard needs to choose the
socket's address itself, which is a few lines here and no new dependency.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

MAX_REDIRECTS = 3
EXCERPT = 500  # characters of the response kept with each attempt
READ_LIMIT = 64 * 1024  # bytes of a response read at most

# Seams for tests: the resolver and the connector are what leave the process.
getaddrinfo = socket.getaddrinfo
create_connection = socket.create_connection


class Refused(Exception):
    """The URL or an address it leads to is not allowed; nothing was sent."""


@dataclass(frozen=True)
class Response:
    status: int
    excerpt: str
    seconds: float


def address_allowed(address: str) -> bool:
    """Whether a connection to this IP address may be made (public unicast only, unless allowed)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    if settings.CLACKS_WEBHOOK_ALLOW_PRIVATE:
        return True
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to, each checked; Refused when any is not allowed."""
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused(f"{host} has no address")
    for address in addresses:
        if not address_allowed(address):
            raise Refused(f"{host} resolves to {address}, a private, loopback or link-local address")
    return addresses


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an allowed http(s) URL; Refused otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("only http:// and https:// URLs with a host are allowed")
    if parts.username or parts.password:
        raise Refused("URLs with credentials are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("the port is not a number between 0 and 65535") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP connection to an address already checked, whatever the Host header says."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, tls: bool):
        super().__init__(host, port, timeout=timeout)
        self.address, self.tls = address, tls

    def connect(self) -> None:
        sock = create_connection((self.address, self.port), self.timeout)
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Response:
    """POST body to url through the guard, following redirects by hand; OSError on network failure."""
    timeout = timeout or settings.CLACKS_WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = check_url(url)
        address = resolve(host, port)[0]
        conn = _PinnedConnection(host, port, address=address, timeout=timeout, tls=scheme == "https")
        try:
            conn.request("POST", path, body=body, headers=headers)
            answer = conn.getresponse()
            content = answer.read(READ_LIMIT)
            location = answer.getheader("Location")
        except http.client.HTTPException as exc:
            raise OSError(f"bad HTTP answer: {exc.__class__.__name__}") from None
        finally:
            conn.close()
        if answer.status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        excerpt = content.decode("utf-8", "replace")[:EXCERPT]
        return Response(answer.status, excerpt, time.monotonic() - started)
    raise Refused(f"more than {MAX_REDIRECTS} redirects")
