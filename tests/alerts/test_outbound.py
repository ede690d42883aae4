"""The address guard of outbound webhook calls. Every refusal happens before any
connection: the session's socket guard (tests/conftest.py) fails a test that tries
to connect outside 127.0.0.0/8, and the local receiver records what reached it."""

from __future__ import annotations

import socket

import pytest

from alerts import outbound

PUBLIC = "93.184.216.34"  # documentation-style public address; never connected to here


def resolving(mapping: dict[str, list[str]]):
    """A stub resolver: each name gives its addresses, as getaddrinfo's tuples."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in mapping[host]]

    return getaddrinfo


@pytest.fixture
def public_name_to_receiver(monkeypatch, receiver):
    """public.example resolves to a public address, and the connector takes that address
    to the local receiver: the guard sees a public address, the bytes stay on 127.0.0.1."""
    monkeypatch.setattr(outbound, "getaddrinfo", resolving({"public.example": [PUBLIC]}))
    real = socket.create_connection
    connected = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connected.append(address)
        assert address[0] == PUBLIC, f"connected to {address}, not the checked address"
        return real(("127.0.0.1", receiver.port), timeout)

    monkeypatch.setattr(outbound, "create_connection", create_connection)
    return connected


def test_loopback_is_refused_without_the_allow_setting(receiver, settings):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(outbound.Refused, match="127.0.0.1"):
        outbound.post(receiver.url, b"{}", {})
    assert receiver.received == [] and not receiver.arrived.is_set()


def test_the_allow_setting_lets_the_local_receiver_through(receiver, allow_private):
    answer = outbound.post(receiver.url, b"{}", {"Content-Type": "application/json"})
    assert answer.status == 200 and answer.excerpt == '{"ok":true}'
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.10/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(url, settings):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(outbound.Refused):
        outbound.post(url, b"{}", {})


def test_a_name_that_resolves_to_a_private_address_is_refused(monkeypatch, settings):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(outbound, "getaddrinfo", resolving({"intranet.example": [PUBLIC, "10.1.2.3"]}))
    with pytest.raises(outbound.Refused, match="intranet.example resolves to 10.1.2.3"):
        outbound.post("https://intranet.example/hook", b"{}", {})


def test_a_public_name_is_called_at_the_address_that_was_checked(public_name_to_receiver, receiver, settings):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    answer = outbound.post("http://public.example/hook?x=1", b'{"a":1}', {"Content-Type": "application/json"})
    assert answer.status == 200
    assert public_name_to_receiver == [(PUBLIC, 80)]
    assert receiver.received[0].headers["host"] == "public.example"
    assert receiver.received[0].body == b'{"a":1}'


def test_a_redirect_to_loopback_is_refused(public_name_to_receiver, receiver, settings):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    receiver.redirect_to = f"http://127.0.0.1:{receiver.port}/elsewhere"
    with pytest.raises(outbound.Refused, match="127.0.0.1"):
        outbound.post("http://public.example/hook", b"{}", {})
    assert public_name_to_receiver == [(PUBLIC, 80)]  # the first hop only
    assert receiver.received == []


def test_a_redirect_to_a_name_of_a_private_address_is_refused(public_name_to_receiver, receiver, monkeypatch, settings):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(outbound, "getaddrinfo", resolving({"public.example": [PUBLIC], "metadata.example": ["169.254.169.254"]}))
    receiver.redirect_to = "http://metadata.example/latest/"
    with pytest.raises(outbound.Refused, match="169.254.169.254"):
        outbound.post("http://public.example/hook", b"{}", {})


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "http:///nohost", "http://user:pw@example.com/"])
def test_only_plain_http_urls_with_a_host_are_allowed(url):
    with pytest.raises(outbound.Refused):
        outbound.post(url, b"{}", {})


def test_the_session_guard_itself_refuses_a_connection_outside_loopback(request):
    # What protects every test above: a connection to a public address fails at once.
    from tests import conftest

    before = len(conftest._OUTSIDE_CONNECTIONS)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((PUBLIC, 80), timeout=0.1)
    assert len(conftest._OUTSIDE_CONNECTIONS) == before + 1
    del conftest._OUTSIDE_CONNECTIONS[before:]  # expected here; any other would fail its test
