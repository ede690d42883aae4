"""gunicorn workers whose own answers carry X-Clacks-Overhead too.

Every response of the server carries `X-Clacks-Overhead: GNU Terry Pratchett`
(docs/protocol.md, X-Clacks-Overhead). Django's middleware adds it to what the app answers,
but gunicorn answers some requests before they reach the app: a request line
too long (414), too many or too large headers (431), a malformed request line,
method, header or chunked body, an unsupported HTTP version (400), an
unsupported transfer coding (501), an `Expect` it cannot meet (417), and a 500
for its own configuration problems or an error that escapes the app before it
started its answer. Each of those goes through the worker's handle_error, which
writes status line, headers and body in one `sendall` (gunicorn.util.write_error).
These workers hand it the client socket wrapped so that the header goes in
right after the status line.

gunicorn also answers `Expect: 100-continue` with an interim `100 Continue`
of its own, just before the app runs (gunicorn.http.wsgi.create, when the
request's `_expected_100_continue` is set). These workers send that one
themselves, with the header, and clear the flag so gunicorn does not send a
second. tests/operations/test_gunicorn_errors.py fails if a gunicorn upgrade
changes either path.

config/gunicorn.py picks the sync or threaded one. Their names must not end in
"SyncWorker": gunicorn swaps a worker class named so for its own threaded one
when GUNICORN_THREADS is above 1.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

OVERHEAD = b"X-Clacks-Overhead: GNU Terry Pratchett\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n" + OVERHEAD + b"\r\n"


class _OverheadSocket:
    """A client socket that adds the header after the status line of the first
    bytes sent through it; everything else goes to the socket as is."""

    def __init__(self, sock):
        self._sock = sock
        self._first = True

    def sendall(self, data: bytes, *args):
        if self._first:
            self._first = False
            status_line, crlf, rest = bytes(data).partition(b"\r\n")
            if crlf:
                data = status_line + crlf + OVERHEAD + rest
        return self._sock.sendall(data, *args)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _Overhead:
    def handle_error(self, req, client, addr, exc):
        super().handle_error(req, _OverheadSocket(client), addr, exc)

    @staticmethod
    def send_continue(req, sock) -> None:
        if getattr(req, "_expected_100_continue", False):
            sock.sendall(CONTINUE)
            req._expected_100_continue = False


class SyncOverheadWorker(_Overhead, SyncWorker):
    """gunicorn's sync worker (one request at a time)."""

    def handle_request(self, listener, req, client, addr):
        self.send_continue(req, client)
        return super().handle_request(listener, req, client, addr)


class ThreadOverheadWorker(_Overhead, ThreadWorker):
    """gunicorn's gthread worker (GUNICORN_THREADS above 1)."""

    def handle_request(self, req, conn):
        self.send_continue(req, conn.sock)
        return super().handle_request(req, conn)
