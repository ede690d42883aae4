"""`manage.py check --deploy` with the documented production environment (.env.example)."""

from __future__ import annotations

import secrets

from tests.operations import servers


def production_env(tmp_path, **overrides: str) -> dict[str, str]:
    """The environment .env.example documents, as Compose would pass it."""
    values = {}
    for line in (servers.REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    values.update(
        DATABASE_URL="postgres://clacks:secret@127.0.0.1:5432/clacks",  # as compose sets it; check needs no connection
        CLACKS_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    values.update(overrides)
    return servers.base_env(**values)


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50))

    done = servers.manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_the_example_secret_key_is_refused_until_replaced(tmp_path):
    done = servers.manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path), check=False)

    assert done.returncode != 0
    assert "security.W009" in done.stderr + done.stdout


def test_the_laptop_defaults_are_what_check_deploy_warns_about(tmp_path):
    # Guards the test above: with no production settings the check does fail.
    env = servers.base_env(DEBUG="False", SECRET_KEY=secrets.token_urlsafe(50), CLACKS_VAR_DIR=str(tmp_path / "var"))

    done = servers.manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)

    output = done.stdout + done.stderr
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008"):  # HSTS, HTTPS redirect
        assert warning in output
