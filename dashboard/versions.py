"""The order of an app's service versions, newest first.

Versions that parse as semantic versions (https://semver.org 2.0.0, with an
optional leading "v") are ordered by semver precedence, pre-releases
included: 1.10.0 > 1.9.2 > 1.9.2-rc.1 > 1.9.2-beta. Build metadata does not
count for precedence; two versions equal but for it sort by their text.
Versions that do not parse ("nightly", "2024.1") cannot be placed among
them: they count as older than every semantic version, and among themselves
the one first seen later is the newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import semver


def parse(version: str) -> semver.Version | None:
    text = version[1:] if version[:1] in ("v", "V") else version
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def sort_key(version: str, first_seen: datetime):
    """Ascending key: older versions sort first."""
    parsed = parse(version)
    if parsed is None:
        return (0, first_seen, version)
    return (1, _Precedence(parsed), version)


def newest_first(first_seen: Mapping[str, datetime]) -> list[str]:
    """The versions (keys) from newest to oldest; `first_seen` orders those that do not parse."""
    return sorted(first_seen, key=lambda version: sort_key(version, first_seen[version]), reverse=True)


class _Precedence:
    """A semver.Version compared by precedence only (build metadata ignored)."""

    __slots__ = ("version",)

    def __init__(self, version: semver.Version):
        self.version = version.replace(build=None)

    def __lt__(self, other: _Precedence) -> bool:
        return self.version.compare(other.version) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Precedence) and self.version.compare(other.version) == 0
