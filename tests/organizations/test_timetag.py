"""The shared time formatting: the viewer's zone on the page, UTC in the markup and on hover."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from organizations.templatetags.clacks import audit_details, retention_label, timetag


def test_timetag_carries_utc_in_the_markup_and_on_hover():
    moment = datetime(2026, 3, 10, 13, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    # No zone activated (organizations.timezones): UTC, said so.
    assert str(timetag(moment)) == (
        '<time datetime="2026-03-10T12:30:05Z" title="2026-03-10 12:30:05 UTC">10 Mar 2026, 12:30 UTC</time>'
    )
    assert str(timetag(moment, "date")).endswith(">10 Mar 2026</time>")
    assert timetag(None) == ""


def test_retention_labels():
    assert [retention_label(d) for d in (None, 1, 90)] == ["forever", "1 day", "90 days"]


def test_audit_details_read_as_text():
    assert audit_details({"to": None, "token_prefix": "clk_x"}) == [("to", "none"), ("token prefix", "clk_x")]
    assert audit_details({"tier": {"from": "free", "to": "pro"}}) == [("tier", "free → pro")]
    assert audit_details("not a dict") == []
