"""config/settings.py read in a fresh process: it writes nothing, bin/prepare does,
and what it derives (the shared store, the plans) comes out of the environment."""

from __future__ import annotations

import json
import stat
import subprocess

from tests.operations import servers

# Prints what the tests look at, from the settings module as Django loads it.
READ_SETTINGS = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from django.conf import settings
print(json.dumps({
    "secret_key": settings.SECRET_KEY,
    "shared_store": settings.CLACKS_SHARED_STORE,
    "cache": settings.CACHES["default"]["BACKEND"],
    "pro": [settings.CLACKS_PLANS["pro"].requests_per_minute, settings.CLACKS_PLANS["pro"].monthly_events],
}))
"""


def read_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(servers.BIN / "python"), "-c", READ_SETTINGS], cwd=servers.REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )


def fresh_env(tmp_path, **overrides: str) -> dict[str, str]:
    env = servers.base_env(**{"CLACKS_VAR_DIR": str(tmp_path / "var"), "STATIC_ROOT": str(tmp_path / "static"), **overrides})
    for name in ("SECRET_KEY", "SECRET_KEY_FILE", "DEBUG"):
        if name not in overrides:
            env.pop(name, None)
    return env


def prepare(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(servers.BIN / "python"), "bin/prepare"], cwd=servers.REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )


def test_importing_the_settings_creates_no_folder_and_no_file(tmp_path):
    done = read_settings(fresh_env(tmp_path, SECRET_KEY="set-by-the-operator"))

    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_a_key_the_settings_say_how_to_get_one(tmp_path):
    done = read_settings(fresh_env(tmp_path))

    assert done.returncode != 0
    assert "ImproperlyConfigured: No SECRET_KEY: set SECRET_KEY (or SECRET_KEY_FILE), or run bin/prepare" in done.stderr
    assert str(tmp_path / "var" / "secret_key") in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_prepare_makes_the_folders_and_a_private_key_the_settings_then_use(tmp_path):
    env = fresh_env(tmp_path)

    first = prepare(env)
    key_file = tmp_path / "var" / "secret_key"
    key = key_file.read_text()
    again = prepare(env)
    done = read_settings(env)

    assert first.returncode == again.returncode == done.returncode == 0, first.stderr + again.stderr + done.stderr
    assert "generated a development SECRET_KEY" in first.stderr and again.stderr == ""
    assert (tmp_path / "static").is_dir()
    assert len(key) >= 50 and key_file.read_text() == key  # kept across runs: sessions survive restarts
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(done.stdout)["secret_key"] == key
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["secret_key"]  # no temporary file left


def test_prepare_writes_no_key_when_one_is_given_or_debug_is_off(tmp_path):
    with_key = prepare(fresh_env(tmp_path / "a", SECRET_KEY="set-by-the-operator"))
    production = prepare(fresh_env(tmp_path / "b", DEBUG="False"))

    assert with_key.returncode == production.returncode == 0
    assert (tmp_path / "a" / "var").is_dir() and (tmp_path / "b" / "var").is_dir()
    assert not (tmp_path / "a" / "var" / "secret_key").exists()
    assert not (tmp_path / "b" / "var" / "secret_key").exists()


def test_prepare_says_which_folder_it_could_not_make(tmp_path):
    (tmp_path / "file").write_text("")

    done = prepare(fresh_env(tmp_path, CLACKS_VAR_DIR=str(tmp_path / "file" / "var")))

    assert done.returncode == 1
    assert done.stderr.startswith(f"bin/prepare: {tmp_path / 'file' / 'var'}:")


def test_the_shared_store_follows_redis_url(tmp_path):
    with_redis = read_settings(fresh_env(tmp_path, SECRET_KEY="k", REDIS_URL="redis://127.0.0.1:6379/9"))
    without = read_settings(fresh_env(tmp_path, SECRET_KEY="k"))

    assert (json.loads(with_redis.stdout)["shared_store"], json.loads(with_redis.stdout)["cache"]) == (
        "redis",
        "django_redis.cache.RedisCache",
    )
    assert (json.loads(without.stdout)["shared_store"], json.loads(without.stdout)["cache"]) == (
        "database",
        "django.core.cache.backends.locmem.LocMemCache",
    )


def test_plan_defaults_come_from_their_variables(tmp_path):
    done = read_settings(
        fresh_env(tmp_path, SECRET_KEY="k", CLACKS_PLAN_PRO_REQUESTS_PER_MINUTE="7", CLACKS_PLAN_PRO_MONTHLY_EVENTS="0")
    )
    bad = read_settings(fresh_env(tmp_path, SECRET_KEY="k", CLACKS_PLAN_PRO_MONTHLY_EVENTS="lots"))

    assert json.loads(done.stdout)["pro"] == [7, 0]
    assert "CLACKS_PLAN_PRO_MONTHLY_EVENTS='lots': expected a whole number" in bad.stderr
