"""`make serve PORT=…` without CLACKS_PUBLIC_URL: what a newcomer copies reaches this server.

The newcomer's path, for real: `make serve` on a port of its own, the first-run
page in a browser-like client, a new app, then the environment block and the
curl example copied from the credentials page and run in a shell. The event
must arrive. Also: commands given the same PORT print the same endpoint.
"""

from __future__ import annotations

import html
import http.client
import os
import re
import shutil
import subprocess
import urllib.parse

import orjson
import pytest

from tests.operations import servers


class Browser:
    """Just enough of a browser over http.client: cookies, CSRF tokens, redirects."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def _send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request(method, path, body=body, headers={"Cookie": cookie, **(headers or {})})
            response = conn.getresponse()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]
            return response.status, response.getheader("Location"), response.read().decode()
        finally:
            conn.close()

    def get(self, path: str) -> tuple[str, str]:
        """(final path, page) after following redirects."""
        for _ in range(5):
            status, location, page = self._send("GET", path)
            if status not in (301, 302):
                assert status == 200, (path, status, page[:500])
                return path, page
            path = location
        raise AssertionError("too many redirects")

    def post_form(self, path: str, page: str, fields: dict) -> tuple[str, str]:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        origin = f"http://127.0.0.1:{self.port}"
        status, location, answer = self._send(
            "POST", path, body,
            {"Content-Type": "application/x-www-form-urlencoded", "Referer": origin + path, "Origin": origin},
        )
        assert status == 302, (path, status, answer[:2000])
        return self.get(location)


def snippet(page: str, element_id: str) -> str:
    """The text the page's Copy button copies: the element's text, tags stripped."""
    match = re.search(rf'<pre id="{element_id}"><code>(.*?)</code></pre>', page, re.S)
    assert match, f"no #{element_id} on the page"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))


@pytest.fixture
def make_serve(tmp_path):
    """`make serve PORT=<free port>` with the suite's database kind and no CLACKS_PUBLIC_URL."""
    if shutil.which("make") is None:
        pytest.fail("make is missing: `make serve` is the README's quick start")
    database_url = servers.fresh_database_url(tmp_path, "serve_port")
    env = servers.base_env(
        DATABASE_URL=database_url,
        CLACKS_VAR_DIR=str(tmp_path / "var"),
        WEB_CONCURRENCY="1",
    )
    env.pop("CLACKS_PUBLIC_URL", None)
    env.pop("PORT", None)
    env.pop("MAKEFLAGS", None)
    started = None
    for _ in range(5):
        port = servers.free_port()
        log_path = tmp_path / f"make-serve-{port}.log"
        with log_path.open("wb") as log:
            # -o: the virtualenv is the one running these tests; do not reinstall it.
            process = subprocess.Popen(
                ["make", "-o", ".venv/.installed", "serve", f"PORT={port}", f"BIN={servers.BIN}"],
                cwd=servers.REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        server = servers.Server(port, process, log_path, tmp_path / "var" / "prometheus", env)
        try:
            if server.bound(timeout=180):
                server.wait_live()
                started = server
                break
        except Exception:
            server.stop()
            raise
        server.stop()
    assert started is not None, "could not bind a port for make serve in 5 tries"
    yield started
    started.stop()
    servers.drop_database(database_url)


def test_the_snippet_copied_from_the_credentials_page_reaches_make_serve_on_its_port(make_serve):
    port = make_serve.port
    browser = Browser(port)

    # The first-run page, then a new app: the browser path of the README's quick start.
    path, page = browser.get("/")
    assert path == "/setup/"
    path, page = browser.post_form("/setup/", page, {
        "username": "newcomer", "email": "", "password1": "a long first password",
        "password2": "a long first password", "organization_name": "Acme",
    })
    path, page = browser.post_form(path, page, {"name": "my-cli"})
    assert path.endswith("/credentials/")

    endpoint = f"http://127.0.0.1:{port}"
    assert f'<code id="endpoint" class="mono break">{endpoint}</code>' in page
    environment, curl = snippet(page, "snippet-env"), snippet(page, "snippet-curl")
    assert f'export CLACKS_ENDPOINT="{endpoint}"' in environment

    shell = subprocess.run(
        ["bash", "-c", environment + "\n" + curl], capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"]},
    )
    assert shell.returncode == 0, shell.stderr
    assert orjson.loads(shell.stdout)["accepted"] == 1

    app_id = re.search(r'export CLACKS_APP_ID="([^"]+)"', environment).group(1)
    assert servers.count_events(make_serve.env["DATABASE_URL"], app_id) == (1, 1)

    # /health names the same base URL and sees no mismatch.
    health = servers.request(port, "GET", "/health").json()
    assert health["public_url"] == {"url": endpoint, "configured": False}

    # Served as in production: no debug page, hashed static files collected and served.
    status, _, missing = browser._send("GET", "/no-such-page/")
    assert status == 404 and "technical_404" not in missing and "Using the URLconf" not in missing
    stylesheet = re.search(r'href="(/static/css/clacks\.[0-9a-f]+\.css)"', page)
    assert stylesheet, "the stylesheet is not the collected, hashed file"
    assert servers.request(port, "GET", stylesheet[1]).status == 200
    # (this test turns the scheduler off, as servers.base_env does for every server it starts)
    assert "DEBUG=False, background jobs: off" in make_serve.log_path.read_text()

    # A command given the same PORT (as make passes it on) prints the same endpoint.
    created = orjson.loads(
        servers.manage("create_app", "--org", "Acme", "--app", "second", "--json", env={**make_serve.env, "PORT": str(port)}).stdout
    )
    assert created["endpoint"] == endpoint
