#!/usr/bin/env python3
"""Ingest throughput as a ratio to PostgreSQL's COPY rate, measured back to back in one run.

1. the storage ceiling (storage_ceiling.py: COPY and store_batch, one connection);
2. a gunicorn server on this checkout (--serve PORT), or one already running (--url);
3. closed-loop load (ingest_load.py) at each --clients value;
4. open-loop load at --open-fraction of the best closed-loop rate, for the p99 target;
5. the storage ceiling again, since machines of this kind drift in speed.

Throughout the load runs a watcher process samples the rollup fold's backlog
twice a second (the served gunicorn runs the scheduler, which folds every 2 s):
how many deltas wait and how old the oldest is, i.e. the fold's lag.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench \\
        .venv/bin/python bench/compare.py --serve 8503 --clients 8 --clients 32

The ratio is ingest events/s (first --clients value) over the mean of the two
COPY figures at the same batch size. With --url, the server must use the same
DATABASE_URL (the benchmark app is created there).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import ingest_load  # noqa: E402
import storage_ceiling  # noqa: E402


def start_server(*, port: int, workers: int, log: Path) -> subprocess.Popen:
    """gunicorn on this checkout, as `make serve` runs it but with DEBUG off."""
    from django.conf import settings

    env = dict(os.environ)
    # The app's HMAC secret was encrypted here with a key derived from this
    # process's SECRET_KEY (a development key under var/ when unset): the
    # server must derive the same one to read it.
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    env.update({"DEBUG": "False", "WEB_CONCURRENCY": str(workers)})
    command = [
        str(REPO / ".venv/bin/gunicorn"),
        "--config",
        "config/gunicorn.py",
        "--bind",
        f"127.0.0.1:{port}",
        "config.wsgi",
    ]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    ingest_load.wait_until_live(f"http://127.0.0.1:{port}")
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _watch_fold(stop, samples, interval: float) -> None:
    """In a process of its own: (time, deltas waiting, age of the oldest in s) every `interval`."""
    from django.db import connections
    from django.utils import timezone

    from telemetry import storage

    try:
        while not stop.is_set():
            pending, oldest = storage.unfolded_deltas()
            age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
            samples.put((time.time(), pending, max(age, 0.0)))
            stop.wait(interval)
    finally:
        connections.close_all()


class FoldWatch:
    def __init__(self, interval: float = 0.5):
        import multiprocessing

        self.stop = multiprocessing.Event()
        self.samples = multiprocessing.Queue()
        self.process = multiprocessing.Process(target=_watch_fold, args=(self.stop, self.samples, interval))

    def __enter__(self) -> FoldWatch:
        self.process.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.collected = []
        while self.process.is_alive() or not self.samples.empty():
            try:
                self.collected.append(self.samples.get(timeout=0.5))
            except Exception:  # queue.Empty once the watcher has stopped
                if not self.process.is_alive():
                    break
        self.process.join(timeout=5)

    def summary(self) -> dict:
        lags = sorted(sample[2] for sample in self.collected)
        backlog = max((sample[1] for sample in self.collected), default=0)
        if not lags:
            return {"samples": 0}
        return {
            "samples": len(lags),
            "lag_p50_s": lags[len(lags) // 2],
            "lag_p95_s": lags[min(len(lags) - 1, int(len(lags) * 0.95))],
            "lag_max_s": lags[-1],
            "backlog_max_rows": backlog,
        }


def bench_app() -> dict:
    """Credentials of a new app under the 'Clacks bench' organization."""
    from organizations.models import Organization
    from organizations.services import create_app, create_organization

    org = Organization.objects.filter(name="Clacks bench").first() or create_organization(name="Clacks bench")
    app, issued = create_app(organization=org, name=f"compare-{time.time_ns() % 10**8}")
    return {"org_id": org.public_id, "app_id": app.public_id, "secret": issued.secret}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--serve", type=int, metavar="PORT", help="start gunicorn on 127.0.0.1:PORT for the run")
    where.add_argument("--url", help="a running server using the same DATABASE_URL")
    parser.add_argument("--workers", type=int, default=4, help="WEB_CONCURRENCY with --serve (default 4)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, action="append", help="repeatable; default 8")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load run (default 20)")
    parser.add_argument("--open-fraction", type=float, default=0.5, help="open-loop rate as a share of the best closed-loop rate; 0 skips it")
    parser.add_argument("--open-clients", type=int, default=32, help="connections for the open-loop run (default 32)")
    parser.add_argument("--ceiling-events", type=int, default=50_000)
    parser.add_argument("--ceiling-repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    clients = args.clients or [8]

    storage_ceiling.setup_django()
    from django.db import connections

    def ceiling() -> list[dict]:
        figures = storage_ceiling.measure_ceiling(
            batch_sizes=(args.batch_size,), events=args.ceiling_events, repeat=args.ceiling_repeat
        )
        connections.close_all()  # the load generator forks; keep no connection across it
        return figures

    before = ceiling()
    print(storage_ceiling.report(before), flush=True)
    credentials = bench_app()
    connections.close_all()
    server = None
    if args.serve:
        log = Path(f"/tmp/clacks_bench_gunicorn_{args.serve}.log")
        server = start_server(port=args.serve, workers=args.workers, log=log)
        url = f"http://127.0.0.1:{args.serve}"
    else:
        url = args.url
    loads = []
    watch = FoldWatch()
    try:
        watch.__enter__()
        for count in clients:
            result = ingest_load.run_load(
                url=url, **credentials, batch_size=args.batch_size, clients=count, duration=args.duration
            )
            loads.append(result)
            print(ingest_load.report(result), flush=True)
        if args.open_fraction:
            best = max(result["events_per_s"] for result in loads)
            rate = round(best * args.open_fraction)
            result = ingest_load.run_load(
                url=url,
                **credentials,
                batch_size=args.batch_size,
                clients=args.open_clients,
                duration=args.duration,
                rate=rate,
            )
            loads.append(result)
            print(ingest_load.report(result), flush=True)
    finally:
        watch.__exit__(None, None, None)
        if server is not None:
            stop_server(server)
    fold = watch.summary()
    after = ceiling()
    print(storage_ceiling.report(after), flush=True)

    def rate_of(figures: list[dict], method: str) -> float:
        return next(f["events_per_s"] for f in figures if f["method"] == method)

    copy_rate = statistics.mean([rate_of(before, "copy"), rate_of(after, "copy")])
    summary = {
        "commit": _commit(),
        "database": "postgresql",
        "workers": args.workers if args.serve else None,
        "batch_size": args.batch_size,
        "copy_events_per_s": copy_rate,
        "store_batch_events_per_s": statistics.mean([rate_of(before, "store_batch"), rate_of(after, "store_batch")]),
        "loads": loads,
        "ratio_to_copy": loads[0]["events_per_s"] / copy_rate,
        "fold": fold,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"\nsummary (commit {summary['commit']}, batch {args.batch_size}):"
        f"\n  COPY ceiling     {copy_rate:,.0f} events/s (mean of before and after)"
        f"\n  store_batch      {summary['store_batch_events_per_s']:,.0f} events/s (the ingest statement alone)"
    )
    for result in loads:
        lat = result["latency_ms"]
        print(
            f"  HTTP {result['mode']:<28} {result['clients']:>3} clients  {result['events_per_s']:>8,.0f} events/s"
            f"  = {result['events_per_s'] / copy_rate:.2f} x COPY   p50/p95/p99 {lat['p50']:.0f}/{lat['p95']:.0f}/{lat['p99']:.0f} ms"
        )
        refused = {code: n for code, n in result["statuses"].items() if code not in ("200", "207")}
        if refused:
            print(f"    not accepted: {refused} (see /tmp/clacks_bench_gunicorn_*.log)")
    if fold.get("samples"):
        print(
            f"  fold lag during the load  p50 {fold['lag_p50_s']:.1f} s  p95 {fold['lag_p95_s']:.1f} s"
            f"  max {fold['lag_max_s']:.1f} s  (oldest unfolded delta; at most {fold['backlog_max_rows']:,} rows waiting;"
            f" {fold['samples']} samples)"
        )


def _commit() -> str:
    marker = REPO / "COMMIT"  # a `git archive` snapshot has no .git
    if marker.exists():
        return marker.read_text().strip()
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
