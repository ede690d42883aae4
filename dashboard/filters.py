"""The filter bar every analytics page shares: version, OS, arch and CI.

A filter is a value of one event field; no filter means every value. The
state lives in the query string (`version`, `os`, `arch`, `ci`, next to the
range's `range`, `start`, `end`), so a filtered view is a link to share.
Bad values are not errors: a value nobody sent just matches nothing, and a
`ci` other than `true`/`false` is ignored.

Figures under a filter come from the segmented rollups (telemetry.rollups,
segment dimensions) and from UserDay, whose columns are named like Event's
so `Filters.q()` filters either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.db.models import Q
from django.http import QueryDict

from telemetry import rollups

FIELDS = ("version", "os", "arch", "ci")
LABELS = {"version": "Version", "os": "OS", "arch": "Arch", "ci": "CI"}
# The Event (and UserDay) column behind each filter.
COLUMNS = {"version": "service_version", "os": "os", "arch": "arch", "ci": "ci"}
MAX_LENGTH = 200


@dataclass(frozen=True)
class Filters:
    version: str | None = None
    os: str | None = None
    arch: str | None = None
    ci: bool | None = None

    @classmethod
    def from_query(cls, query: QueryDict | dict) -> Filters:
        values = {}
        for name in ("version", "os", "arch"):
            value = query.get(name)
            # Empty means "any"; an empty OS or arch as sent by an SDK is picked as "(none)".
            # No stored value holds a NUL (PostgreSQL refuses it in a query, too): ignored.
            if value is not None and value != "" and len(value) <= MAX_LENGTH and "\x00" not in value:
                values[name] = "" if value == NONE else value
        ci = query.get("ci")
        if ci in ("true", "false"):
            values["ci"] = ci == "true"
        return cls(**values)

    @property
    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in FIELDS)

    def items(self) -> list[tuple[str, str]]:
        """(name, query value) of the filters in effect, in the bar's order."""
        out = []
        for name in FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "ci":
                out.append((name, "true" if value else "false"))
            else:
                out.append((name, NONE if value == "" else value))
        return out

    def query(self) -> str:
        return urlencode(self.items())

    def with_value(self, name: str, value) -> Filters:
        """These filters plus one more (clicking a breakdown row)."""
        if name == "ci" and isinstance(value, str):
            value = {"true": True, "false": False}.get(value)
        return replace(self, **{name: value})

    def without(self, name: str) -> Filters:
        return replace(self, **{name: None})

    def q(self, *, ci_as_text: bool = False) -> Q:
        """The filters as a Q on Event columns, or on UserDay's with ci_as_text
        (UserDay keeps ci as "true", "false" or "")."""
        condition = Q()
        for name in FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "ci" and ci_as_text:
                value = rollups.ci_text(value)
            condition &= Q(**{COLUMNS[name]: value})
        return condition

    def matches(self, segment: rollups.Segment) -> bool:
        """Whether a segmented rollup row's segment passes the filters. Segment
        parts are cut to telemetry.rollups.PART_LENGTHS, so the filter is too."""
        for name in FIELDS:
            wanted = getattr(self, name)
            if wanted is None:
                continue
            if name != "ci":
                wanted = rollups.part(name, wanted)
            if wanted != getattr(segment, name):
                return False
        return True

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, label, shown value) of each filter in effect, for the bar's chips."""
        return [(name, LABELS[name], shown(name, getattr(self, name))) for name in FIELDS if getattr(self, name) is not None]


NONE = "(none)"  # how an empty OS or arch is shown and put in a URL


def shown(name: str, value) -> str:
    if name == "ci":
        return {True: "CI", False: "Not CI", None: "Unknown"}[value]
    return NONE if value == "" else str(value)

