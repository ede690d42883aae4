#!/usr/bin/env python3
"""Where an ingest request spends its time: the full Django stack in one process, under cProfile.

Calls the WSGI application directly with signed SDK-shaped batches (as
gunicorn would, minus the socket), against the database in DATABASE_URL, and
prints per request: wall time, this process's CPU time, the remainder (time
waiting for the database, which runs on the same machine), and the phases
that matter, then the functions with the most time of their own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench DEBUG=False SECRET_KEY=x \\
        .venv/bin/python bench/profile_ingest.py --requests 300

--no-health-checks turns CONN_HEALTH_CHECKS off for the run, to show what
the per-request `SELECT 1` costs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from sdk_events import BodyFactory, signed_headers  # noqa: E402

# Timed without a profiler (cProfile inflates Python's many small calls several
# times): each of these is wrapped to add its wall and CPU time. Indented ones
# run inside the one above. Missing names are skipped, so the list can name
# functions that a later change adds; add more with --phase module:attribute
# (a function called per event, such as parse_rfc3339, gets a microsecond of
# wrapper cost per call added to its own figure).
PHASES = (
    ("telemetry.auth", "authenticate", "authentication (signature, app, nonce)"),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.close_if_health_check_failed", "  connection health check (SELECT 1)"),
    ("telemetry.auth", "remember_nonce", "  remember_nonce (INSERT, own commit)"),
    ("telemetry.auth", "signature_matches", "  HMAC"),
    ("telemetry.limits", "enforce_rate", "rate limit (enforce_rate)"),
    ("telemetry.limits", "reserve_events", "monthly quota (reserve_events)"),
    ("telemetry.limits", "release_events", "monthly quota (release_events)"),
    ("telemetry.ingest", "parse_batch", "parse body (orjson)"),
    ("telemetry.ingest", "validate_events", "validate events"),
    ("telemetry.storage", "store_batch", "store_batch (keys, events, rollup deltas, actors)"),
)


class Timer:
    """Wraps module.attribute (a function, or Class.method) to sum wall and CPU time."""

    def __init__(self, module: str, attribute: str, label: str):
        import importlib

        self.label, self.wall, self.cpu, self.calls = label, 0.0, 0.0, 0
        self.active = False
        try:
            owner = importlib.import_module(module)
        except ImportError:
            return
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            return
        timer = self

        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                timer.wall += time.perf_counter() - wall
                timer.cpu += time.process_time() - cpu
                timer.calls += 1

        setattr(owner, name, timed)
        self.active = True

    def reset(self) -> None:
        self.wall = self.cpu = 0.0
        self.calls = 0


def environ_for(path: str, body: bytes, headers: dict[str, str]) -> dict:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": headers.pop("Content-Type"),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--no-health-checks", action="store_true", help="run with CONN_HEALTH_CHECKS off")
    parser.add_argument("--phase", action="append", default=[], metavar="MODULE:ATTRIBUTE", help="time one more function")
    parser.add_argument("--cprofile", type=int, metavar="N", default=0, help="also list the N functions with most own time under cProfile")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings

    django.setup()
    if args.no_health_checks:
        settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    import logging

    from django.core.wsgi import get_wsgi_application

    from storage_ceiling import drop_scratch_app, scratch_app

    logging.disable(logging.INFO)  # per-request log lines go to this terminal otherwise
    # Extra phases may run inside listed ones, so they are indented (left out of the sum).
    phases = [*PHASES, *((m, a, f"  + {m}:{a}") for m, _, a in (p.partition(":") for p in args.phase))]
    timers = [timer for timer in (Timer(*phase) for phase in phases) if timer.active]
    application = get_wsgi_application()
    app = scratch_app()
    secret = app.credentials.active().first().reveal_secret()
    path = f"/v1/ingest/{app.organization.public_id}/{app.public_id}"
    factory = BodyFactory(batch_size=args.batch_size)
    n = args.requests

    def run(count: int) -> tuple[float, float]:
        """Wall and CPU seconds of `count` requests (bodies are built beforehand)."""
        bodies = [factory.body() for _ in range(count)]
        statuses = []
        wall, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            headers = signed_headers(secret, body, timestamp=int(time.time()), batch_size=args.batch_size)
            chunks = application(environ_for(path, body, headers), lambda s, h, *a: statuses.append(s))
            b"".join(chunks)
            chunks.close()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(status.startswith("200") for status in statuses), sorted(set(statuses))
        return wall, cpu

    try:
        run(20)  # warm up: imports, caches, the connection
        for timer in timers:
            timer.reset()
        wall, cpu = run(n)
        figures = [(timer.label, timer.wall, timer.cpu) for timer in timers]  # before cProfile adds to them
        profiler = None
        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
            run(n)
            profiler.disable()
    finally:
        drop_scratch_app(app)

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"ingest request profile: {n} requests of {args.batch_size} events, one process, database {engine}"
        f"{', health checks off' if args.no_health_checks else ''}"
    )
    print(
        f"  per request: {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU in this process"
        f" -> {args.batch_size * n / wall:,.0f} events/s from one process"
    )
    print(f"  {'phase':<44} {'wall ms':>8} {'CPU ms':>8}  (per request; wall - CPU = waiting, mostly on the database)")
    top_wall = top_cpu = 0.0
    for label, timer_wall, timer_cpu in figures:
        print(f"  {label:<44} {timer_wall / n * 1000:8.2f} {timer_cpu / n * 1000:8.2f}")
        if not label.startswith(" "):
            top_wall, top_cpu = top_wall + timer_wall, top_cpu + timer_cpu
    print(
        f"  {'everything else (Django, DRF, middleware)':<44} {(wall - top_wall) / n * 1000:8.2f} {(cpu - top_cpu) / n * 1000:8.2f}"
    )
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(args.cprofile)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
        print(f"  under cProfile ({n} requests), functions by own time:")
        for line in lines[start : start + args.cprofile + 1]:
            print("    " + line)


if __name__ == "__main__":
    main()
