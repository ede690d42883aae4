"""Capturing the queries some code runs on every database Clacks writes: DATABASE_URL's,
and EVENTS_DATABASE_URL's when events have their own (docs/events-database.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

from telemetry import databases


@contextmanager
def capture_queries() -> Iterator[list[dict]]:
    """Like CaptureQueriesContext, over every alias; the list fills when the block ends."""
    aliases = [DEFAULT_DB_ALIAS] + ([databases.EVENTS] if databases.split() else [])
    captured: list[dict] = []
    with ExitStack() as stack:
        contexts = [stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in aliases]
        yield captured
    for context in contexts:
        captured.extend(context.captured_queries)
