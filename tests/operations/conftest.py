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
