"""Operations fixtures: the JSON log as written, and real servers in subprocesses."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from config.logs import JsonFormatter


class CapturedLog:
    def __init__(self):
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        """Every record as written: one JSON object per line, or the test fails."""
        return [orjson.loads(line) for line in self.text.splitlines()]

    def requests(self) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == "clacks.request"]


@pytest.fixture
def json_log():
    """Every record of the process at DEBUG, formatted as production formats it."""
    captured = CapturedLog()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    # "django" does not propagate to the root (settings.LOGGING), so listen there too.
    loggers = [logging.getLogger(), logging.getLogger("django"), logging.getLogger("django.request")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield captured
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="session")
def served_database(tmp_path_factory):
    """A migrated database for servers in subprocesses, of the kind this run uses;
    dropped at the end. Tests create their own app in it, so counts stay their own."""
    from tests.operations import servers

    url = servers.fresh_database_url(tmp_path_factory.mktemp("served"), "served")
    servers.manage("migrate_locked", env=servers.base_env(DATABASE_URL=url))  # and its events' database, if any
    yield url
    servers.drop_database(url)


@pytest.fixture
def gunicorn(tmp_path, served_database):
    """Start gunicorn servers on the served database (or another); all stopped afterwards."""
    from tests.operations import servers

    started = []

    def start(*, database_url: str | None = None, workers: int = 2, **env: str) -> servers.Server:
        server = servers.start_gunicorn(tmp_path, database_url or served_database, workers=workers, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
