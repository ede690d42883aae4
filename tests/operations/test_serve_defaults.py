"""`make serve` is safe by default: DEBUG off, the project's own error pages, static files
through whitenoise, the development key kept under var/, and 127.0.0.1 and localhost
both answered."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.operations import servers

pytestmark = pytest.mark.django_db(transaction=True)


def serve_environment() -> dict[str, str]:
    """The variables `make serve` sets for the server, read from its dry run."""
    done = subprocess.run(
        ["make", "-n", "serve", "PORT=8999"], cwd=servers.REPO, capture_output=True, text=True, check=True,
        env=servers.base_env(SECRET_KEY="", SECRET_KEY_FILE="", DEBUG=""),
    )  # fmt: skip
    [line] = [line for line in done.stdout.splitlines() if "gunicorn --config" in line]
    return dict(re.findall(r"(\w+)=\$\{\w+:-([^}]*)\}", line))


def test_make_serve_turns_debug_off_and_keeps_the_key_under_var():
    env = serve_environment()
    assert env["DEBUG"] == "False"
    assert env["SECRET_KEY_FILE"] == "var/secret_key"
    # Plain HTTP on loopback: Secure cookies would never come back.
    assert env["SESSION_COOKIE_SECURE"] == env["CSRF_COOKIE_SECURE"] == "False"


def test_the_server_make_serve_starts_shows_its_own_pages(tmp_path, gunicorn):
    env = serve_environment()
    var = tmp_path / "var"
    static = tmp_path / "static"
    laptop = servers.base_env(CLACKS_VAR_DIR=str(var), STATIC_ROOT=str(static), DEBUG="", SECRET_KEY="", SECRET_KEY_FILE="")
    servers.prepare(laptop)  # as `make prepare` runs it: the development key
    settings = {**env, "SECRET_KEY_FILE": str(var / "secret_key"), "STATIC_ROOT": str(static), "SECRET_KEY": ""}
    servers.manage("collectstatic", "--noinput", "--verbosity", "0", env={**laptop, **settings})
    server = gunicorn(workers=1, **settings)

    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        missing = servers.request(server.port, "GET", "/no/such/page/", headers={"Host": host})
        assert missing.status == 404, host
        page = missing.body.decode()
        assert "<h1>Not found</h1>" in page and "URLconf" not in page
        css = re.search(r'href="(/static/css/clacks\.[0-9a-f]{12}\.css)"', page)
        assert css, "static files are not the hashed ones collectstatic made"
        assert servers.request(server.port, "GET", css[1], headers={"Host": host}).status == 200
    refused = servers.request(server.port, "GET", "/accounts/login/", headers={"Host": "evil.example"})
    assert refused.status == 400
