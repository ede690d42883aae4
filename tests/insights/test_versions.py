"""Version order: semantic-version precedence, pre-releases included; the rest by first seen."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from dashboard import versions

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_the_issue_examples_and_pre_release_rules():
    seen = dict.fromkeys(["1.9.2-rc.1", "1.10.0", "1.9.2", "1.9.2-alpha", "1.9.2-rc.10", "1.9.2-rc.2", "v1.11.0"], T0)
    assert versions.newest_first(seen) == ["v1.11.0", "1.10.0", "1.9.2", "1.9.2-rc.10", "1.9.2-rc.2", "1.9.2-rc.1", "1.9.2-alpha"]


def test_versions_that_do_not_parse_are_older_than_semantic_ones_and_ordered_by_first_seen():
    seen = {"nightly": T0 + timedelta(days=5), "2024.1": T0 + timedelta(days=1), "0.0.1": T0, "1.0.0+build.7": T0}
    assert versions.newest_first(seen) == ["1.0.0+build.7", "0.0.1", "nightly", "2024.1"]


numbers = st.integers(min_value=0, max_value=30)
identifiers = st.lists(st.one_of(numbers.map(str), st.sampled_from(["alpha", "beta", "rc", "x-1"])), min_size=1, max_size=3).map(tuple)
semvers = st.tuples(numbers, numbers, numbers, st.none() | identifiers)


def brute_key(parts):
    """semver.org §11, written out: a release outranks its pre-releases; identifiers compare one by one,
    numeric ones numerically and below alphanumeric ones; a longer list wins a tie."""
    major, minor, patch, pre = parts
    if pre is None:
        return (major, minor, patch, 1, ())
    return (major, minor, patch, 0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre) + ((-1, 0, ""),))


@given(st.lists(semvers, min_size=1, max_size=12, unique=True))
def test_order_matches_the_written_out_rules(items):
    text = {f"{a}.{b}.{c}" + ("-" + ".".join(pre) if pre else ""): (a, b, c, pre) for a, b, c, pre in items}
    ordered = versions.newest_first(dict.fromkeys(text, T0))
    expected = sorted(text, key=lambda version: brute_key(text[version]), reverse=True)
    assert [brute_key(text[v]) for v in ordered] == [brute_key(text[v]) for v in expected]
