"""The `oidc_provider` fixture: the test OpenID provider as a second server process on 127.0.0.1.

Import it into a test module (`from tests.oidc_provider.fixture import oidc_provider, sso_on`).
The provider (tests/oidc_provider/settings.py) keeps its own SQLite file under
pytest's temporary directory; setup_provider.py registers Clacks as a client and
creates the people in PEOPLE. `Provider.sign_in` plays the browser's part at the
provider (its sign-in form and consent page) with requests, and returns the URL
the provider sends the browser back to, for Django's test client to open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.oidc_provider.setup_provider import CLIENT_ID, CLIENT_SECRET, PASSWORD

ROOT = Path(__file__).resolve().parents[2]
# Where Django's test client (host "testserver") receives the provider's answer.
TEST_CLIENT_CALLBACK = "http://testserver/accounts/oidc/callback/"


class _Forms(HTMLParser):
    """The first form of a page: its action and its named inputs (submit buttons apart)."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.submits: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self._done:
            self._in_form, self.action = True, attrs.get("action") or ""
        elif tag == "input" and self._in_form and attrs.get("name"):
            target = self.submits if attrs.get("type") == "submit" else self.fields
            target[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def _form(response: requests.Response) -> _Forms:
    parser = _Forms()
    parser.feed(response.text)
    assert parser.action is not None, f"no form at {response.url}: {response.text[:500]}"
    return parser


@dataclass
class Provider:
    url: str
    issuer: str
    client_id: str
    client_secret: str
    env: dict

    def add_redirect_uri(self, uri: str) -> None:
        """Register another redirect URI of Clacks (the live server's) with the provider."""
        subprocess.run(
            [sys.executable, "-m", "tests.oidc_provider.setup_provider", "--redirect-uri", uri],
            env=self.env, cwd=ROOT, check=True, capture_output=True,
        )

    def sign_in(self, authorize_url: str, username: str, *, allow: bool = True) -> str:
        """Sign in at the provider as `username` and allow (or decline) Clacks; the
        callback URL the provider redirects to, with its code and state (or error)."""
        browser = requests.Session()
        page = browser.get(authorize_url, timeout=10)  # redirected to the provider's sign-in form
        assert "/login/" in page.url, page.url
        form = _form(page)
        page = browser.post(
            page.url,
            data={**form.fields, "username": username, "password": PASSWORD},
            timeout=10,
        )  # back to the authorization endpoint: its consent page
        form = _form(page)
        data = dict(form.fields)
        if allow:
            data["allow"] = form.submits["allow"]
        answer = browser.post(urljoin(page.url, form.action), data=data, timeout=10, allow_redirects=False)
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> Provider:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("oidc-provider")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
        "OIDC_PROVIDER_DB": str(workdir / "provider.sqlite3"),
        "OIDC_PROVIDER_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    provider = Provider(url=url, issuer=f"{url}/openid", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, env=env)
    provider.add_redirect_uri(TEST_CLIENT_CALLBACK)
    log = open(workdir / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (workdir / "server.log").read_text()
            assert time.monotonic() < deadline, "the test OpenID provider did not start in 30 s"
            time.sleep(0.2)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def sso_on(settings, oidc_provider) -> Provider:
    """Single sign-on configured against the test provider, as the environment would."""
    settings.OIDC_ISSUER = oidc_provider.issuer
    settings.OIDC_CLIENT_ID = oidc_provider.client_id
    settings.OIDC_CLIENT_SECRET = oidc_provider.client_secret
    settings.OIDC_BUTTON_LABEL = "Sign in with Acme ID"
    return oidc_provider
