"""The answers gunicorn writes itself, before a request reaches the app, carry
X-Clacks-Overhead too (docs/protocol.md, X-Clacks-Overhead; config/gunicorn_worker.py).

Raw sockets, since no HTTP client sends these shapes."""

from __future__ import annotations

import socket

import pytest

OVERHEAD = b"X-Clacks-Overhead: GNU Terry Pratchett"
HOST = b"Host: 127.0.0.1\r\n"

# (what is sent, the status line gunicorn answers with)
BAD_REQUESTS = {
    "request line too long": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", b"414 URI Too Long"),
    "too many headers": (
        b"GET /live HTTP/1.1\r\n" + HOST + b"".join(b"X-Header-%d: v\r\n" % i for i in range(120)) + b"\r\n",
        b"431 Request Header Fields Too Large",
    ),
    "header too large": (
        b"GET /live HTTP/1.1\r\n" + HOST + b"X-Big: " + b"v" * 9000 + b"\r\n\r\n",
        b"431 Request Header Fields Too Large",
    ),
    "unknown HTTP version": (b"GET /live HTTP/9.9\r\n" + HOST + b"\r\n", b"400 Bad Request"),
    "HTTP version not a version": (b"GET /live HTTP/x\r\n" + HOST + b"\r\n", b"400 Bad Request"),
    "no HTTP version": (b"GET /live\r\n\r\n", b"400 Bad Request"),
    "not a request line": (b"GARBAGE\r\n\r\n", b"400 Bad Request"),
    "invalid method": (b"G(T /live HTTP/1.1\r\n" + HOST + b"\r\n", b"400 Bad Request"),
    "NUL in the request line": (b"GET /li\x00ve HTTP/1.1\r\n" + HOST + b"\r\n", b"400 Bad Request"),
    "bytes outside ASCII in the path": (b"GET /\xff\xfe HTTP/1.1\r\n" + HOST + b"\r\n", b"400 Bad Request"),
    "bare LF line ends": (b"GET /live HTTP/1.1\n" + HOST + b"\n", b"400 Bad Request"),
    "space in a header name": (b"GET /live HTTP/1.1\r\n" + HOST + b"Bad Header: v\r\n\r\n", b"400 Bad Request"),
    "header without a colon": (b"GET /live HTTP/1.1\r\n" + HOST + b"NoColon\r\n\r\n", b"400 Bad Request"),
    "NUL in a header": (b"GET /live HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", b"400 Bad Request"),
    "folded header": (b"GET /live HTTP/1.1\r\n" + HOST + b"X-A: v\r\n folded\r\n\r\n", b"400 Bad Request"),
    "two Content-Length": (
        b"POST /live HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        b"400 Bad Request",
    ),
    "Content-Length not a number": (
        b"POST /live HTTP/1.1\r\n" + HOST + b"Content-Length: x\r\n\r\n",
        b"400 Bad Request",
    ),
    "chunked and Content-Length": (
        b"POST /live HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"400 Bad Request",
    ),
    "Transfer-Encoding not ending in chunked": (
        b"POST /live HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
        b"400 Bad Request",
    ),
    "unknown Transfer-Encoding": (
        b"POST /live HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: foo\r\n\r\n",
        b"501 Bad Request",
    ),
    "unmet Expect": (
        b"POST /live HTTP/1.1\r\n" + HOST + b"Expect: something\r\nContent-Length: 0\r\n\r\n",
        b"417 Expectation Failed",
    ),
    "contradictory scheme headers": (
        b"GET /live HTTP/1.1\r\n" + HOST + b"X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
        b"400 Bad Request",
    ),
    "PROXY protocol line": (
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET /live HTTP/1.1\r\n" + HOST + b"\r\n",
        b"400 Bad Request",
    ),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"400 Bad Request"),
    # gunicorn's 500 for its own configuration problems: the path is not under SCRIPT_NAME.
    "path outside SCRIPT_NAME": (
        b"GET /live HTTP/1.1\r\n" + HOST + b"SCRIPT_NAME: /elsewhere\r\n\r\n",
        b"500 Bad Request",
    ),
}


def exchange(port: int, data: bytes) -> bytes:
    """Send the bytes, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(data)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def head(answer: bytes) -> tuple[bytes, list[bytes]]:
    """(the status line without HTTP/1.1, the header lines) of the first response."""
    lines = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return lines[0].removeprefix(b"HTTP/1.1 "), lines[1:]


@pytest.mark.parametrize(
    ("threads", "worker"), [("1", "SyncOverheadWorker"), ("2", "ThreadOverheadWorker")], ids=["sync", "threaded"]
)
def test_every_answer_gunicorn_writes_itself_carries_the_overhead(gunicorn, threads, worker):
    server = gunicorn(workers=1, GUNICORN_THREADS=threads)
    assert f"Using worker: config.gunicorn_worker.{worker}" in server.log_path.read_text()
    answers = {name: head(exchange(server.port, data)) for name, (data, _) in BAD_REQUESTS.items()}

    assert {name: status for name, (status, _) in answers.items()} == {
        name: status for name, (_, status) in BAD_REQUESTS.items()
    }
    assert [name for name, (_, headers) in answers.items() if headers.count(OVERHEAD) != 1] == []
    # What the app answers carries it once, as before.
    status, headers = head(exchange(server.port, b"GET /live HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"))
    assert (status, headers.count(OVERHEAD)) == (b"200 OK", 1)


@pytest.mark.parametrize("threads", ["1", "2"], ids=["sync", "threaded"])
def test_the_interim_100_continue_carries_it_too_and_comes_once(gunicorn, threads):
    """gunicorn sends `100 Continue` itself when a client asks for it before its
    body; the app's answer follows."""
    server = gunicorn(workers=1, GUNICORN_THREADS=threads)
    body = b'{"events": []}'
    request = (
        b"POST /v1/ingest/org_nobody/app_nobody HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(request)
        interim = client.recv(65536)  # the client waits for it before sending the body
        client.sendall(body)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk

    assert interim == b"HTTP/1.1 100 Continue\r\n" + OVERHEAD + b"\r\n\r\n"
    status, headers = head(answer)
    assert status == b"401 Unauthorized"
    assert headers.count(OVERHEAD) == 1
    assert b"100 Continue" not in answer
