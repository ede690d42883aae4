"""bench/funnels.py times real funnel pages: every funnel and range answers 200."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from dashboard.models import Funnel
from tests.dashboard.conftest import sdk_event, store

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import funnels as bench_funnels  # noqa: E402


@pytest.fixture
def environment_restored():
    """main() sets defaults in os.environ for a bench process (bench/pages.py setup_django):
    they must go with the test, or later tests' child processes inherit its SECRET_KEY."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_the_funnel_benchmark_times_each_funnel_page(org, app, capsys, environment_restored):
    now = timezone.now()
    store(app, sdk_event(now - timedelta(hours=2), data={"command": "init"}),
          sdk_event(now - timedelta(hours=1), data={"command": "build"}), now=now)  # fmt: skip

    bench_funnels.main(["--org-id", org.public_id, "--repeat", "1", "--warmup", "0", "--range", "7d"])

    lines = [line for line in capsys.readouterr().out.splitlines() if " 7d " in line]
    assert len(lines) == len(bench_funnels.FUNNELS) * len(bench_funnels.FILTERS)
    assert all(" 200 " in line for line in lines), lines
    assert Funnel.objects.filter(app=app).count() == len(bench_funnels.FUNNELS)
