"""Single sign-on's environment, read by config/settings.py in a fresh process."""

from __future__ import annotations

import json
import subprocess

from tests.operations import servers
from tests.operations.test_settings import fresh_env

READ = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from django.conf import settings
print(json.dumps([settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET,
                  settings.OIDC_BUTTON_LABEL, settings.OIDC_SIGN_ALGO]))
"""


def read(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(servers.BIN / "python"), "-c", READ], cwd=servers.REPO, env=fresh_env(tmp_path, SECRET_KEY="k", **env),
        capture_output=True, text=True, timeout=120,
    )


def test_single_sign_on_is_off_by_default(tmp_path):
    done = read(tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["", "", "", "Sign in with single sign-on", "RS256"]


def test_the_client_secret_can_come_from_a_file(tmp_path):
    (tmp_path / "secret").write_text("from-a-file\n")

    done = read(
        tmp_path,
        OIDC_ISSUER="https://id.example.com/realms/acme",
        OIDC_CLIENT_ID="clacks",
        OIDC_CLIENT_SECRET_FILE=str(tmp_path / "secret"),
        OIDC_BUTTON_LABEL="Sign in with Acme ID",
        OIDC_SIGN_ALGO="ES256",
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        "https://id.example.com/realms/acme", "clacks", "from-a-file", "Sign in with Acme ID", "ES256",
    ]


def test_half_a_configuration_stops_the_start(tmp_path):
    done = read(tmp_path, OIDC_ISSUER="https://id.example.com", OIDC_CLIENT_ID="clacks")

    assert done.returncode != 0
    assert "OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET: set all three" in done.stderr


def test_a_plain_http_issuer_elsewhere_than_this_machine_is_refused(tmp_path):
    done = read(tmp_path, OIDC_ISSUER="http://id.example.com", OIDC_CLIENT_ID="c", OIDC_CLIENT_SECRET="s")

    assert done.returncode != 0
    assert "OIDC_ISSUER='http://id.example.com': use the provider's https:// issuer URL" in done.stderr


def test_an_unknown_signing_algorithm_is_refused(tmp_path):
    done = read(tmp_path, OIDC_SIGN_ALGO="none")

    assert done.returncode != 0
    assert "OIDC_SIGN_ALGO='none'" in done.stderr
