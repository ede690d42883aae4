#!/usr/bin/env python3
"""Soak: a steady ingest load held for many minutes while every background job runs.

1. gunicorn on this checkout (--serve PORT, --workers 4) with its built-in
   scheduler, the hourly and five-minute jobs brought forward (--job-periods:
   partitions, retention, rollups, properties and the digest every few minutes,
   alerts every minute, the fold every 2 s, deliveries every 5 s), and three
   alert rules on the load's app so the alerts job has something to evaluate;
2. the closed-loop capacity, briefly (ingest_load.py, --capacity-clients,
   --capacity-seconds);
3. open-loop load at --fraction of it (default half) for --minutes, measured
   minute by minute: throughput, latency percentiles, answers that were not
   200, the workers' resident memory (from /proc), the database's size
   against the events stored, the runs and failures of each job;
4. a summary against what a soak should show: throughput and p99 steady,
   worker memory flat within 10 %, database growth in step with the events
   stored, no error (README, Performance, "Soak").

    createdb -h 127.0.0.1 -U postgres clacks_soak
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_soak .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_soak .venv/bin/python bench/soak.py --serve 8505 --minutes 20

Each minute is one ingest_load.py run (open loop, 32 connections, no warm-up);
the gaps between them (under a second to start the client processes) are not
counted. PostgreSQL only: the database size comes from pg_database_size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import compare  # noqa: E402
import ingest_load  # noqa: E402
import storage_ceiling  # noqa: E402

# Every job several times in a 20-minute run (the defaults: an hour for the first three and the digest).
JOB_PERIODS = "partitions=180,retention=180,rollups=180,properties=300,digest=300,alerts=60"


# --- What the server is doing --------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def server_processes(master: int) -> dict:
    """Resident memory of gunicorn's workers and of the scheduler child, in MB."""
    workers, scheduler = {}, {}
    for pid in children(master):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        (scheduler if "run_scheduler" in cmdline else workers)[pid] = rss_mb(pid)
    return {"workers": workers, "scheduler": scheduler}


def database_figures(app_public_id: str) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
        cursor.execute("SELECT name, runs, failures, last_error, last_duration FROM telemetry_scheduledjob")
        jobs = {
            name: {"runs": runs, "failures": failures, "last_error": error,
                   "last_duration_s": duration.total_seconds() if duration else None}
            for name, runs, failures, error, duration in cursor.fetchall()
        }
    from django.utils import timezone

    from telemetry import storage

    pending, oldest = storage.unfolded_deltas()  # the fold's backlog at this moment
    connection.close()  # the load generator forks: keep no connection across it
    lag = max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0
    return {"size_bytes": size, "jobs": jobs, "fold_backlog_rows": pending, "fold_lag_s": lag}


def count_events(app_public_id: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM telemetry_event e JOIN organizations_app a ON a.id = e.app_id WHERE a.public_id = %s",
            [app_public_id],
        )
        count = cursor.fetchone()[0]
    connection.close()
    return count


def add_alert_rules(app_public_id: str) -> None:
    """Rules the alerts job evaluates every minute against the app under load."""
    from alerts.services import create_rule
    from organizations.models import App

    app = App.objects.get(public_id=app_public_id)
    create_rule(app, name="soak silence", kind="silence", minutes=5)
    create_rule(app, name="soak failures", kind="failure_rate", minutes=15, threshold=50.0, min_count=10)
    create_rule(app, name="soak volume", kind="volume", factor=3.0, direction="above", min_count=100)


def error_lines(log: Path, since: int) -> tuple[list[str], int]:
    """ERROR and CRITICAL lines the server wrote past byte `since`, and the new offset."""
    with log.open("rb") as handle:
        handle.seek(since)
        text = handle.read()
        end = handle.tell()
    found = []
    for line in text.decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            found.append(line[:300])
    return found, end


# --- The run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, metavar="PORT", required=True, help="start gunicorn on 127.0.0.1:PORT")
    parser.add_argument("--workers", type=int, default=4, help="WEB_CONCURRENCY (default 4)")
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--fraction", type=float, default=0.5, help="share of the closed-loop capacity offered (default 0.5)")
    parser.add_argument("--rate", type=float, help="offer this many events/s and skip the capacity run")
    parser.add_argument("--capacity-clients", type=int, default=8)
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--open-clients", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--job-periods", default=JOB_PERIODS, help=f"CLACKS_SCHEDULER_PERIODS for the run (default {JOB_PERIODS})")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = parser.parse_args(argv)

    os.environ["CLACKS_SCHEDULER_PERIODS"] = args.job_periods
    os.environ.setdefault("CLACKS_SCHEDULER", "on")
    storage_ceiling.setup_django()
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        raise SystemExit("the soak runs on PostgreSQL (DATABASE_URL=postgres://...)")
    credentials = compare.bench_app()
    add_alert_rules(credentials["app_id"])
    connections.close_all()

    log = Path(f"/tmp/clacks_soak_gunicorn_{args.serve}.log")
    server = compare.start_server(port=args.serve, workers=args.workers, log=log)
    url = f"http://127.0.0.1:{args.serve}"
    minutes: list[dict] = []
    try:
        if args.rate:
            capacity, rate = None, args.rate
        else:
            capacity = ingest_load.run_load(url=url, **credentials, batch_size=args.batch_size,
                                             clients=args.capacity_clients, duration=args.capacity_seconds)
            print("capacity (closed loop):\n" + ingest_load.report(capacity), flush=True)
            rate = round(capacity["events_per_s"] * args.fraction)
        print(f"\nsoak: {rate:,} events/s offered for {args.minutes} min, {args.workers} workers,"
              f" jobs every {args.job_periods}", flush=True)
        stored_before = count_events(credentials["app_id"])
        before = database_figures(credentials["app_id"])
        processes = server_processes(server.pid)
        log_offset = 0
        _, log_offset = error_lines(log, 0)  # what the capacity run logged is not the soak's
        print(f"start: workers {sorted(round(v) for v in processes['workers'].values())} MB,"
              f" database {before['size_bytes'] / 1e6:,.1f} MB", flush=True)
        header = (f"{'min':>3} {'events/s':>9} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} {'not 200':>7}"
                  f" {'workers MB':>11} {'sched MB':>8} {'db MB':>8} {'B/event':>7} {'fold s':>6} {'job runs (failures)':<}")
        print(header, flush=True)
        previous, stored = before, 0
        for minute in range(1, args.minutes + 1):
            result = ingest_load.run_load(url=url, **credentials, batch_size=args.batch_size,
                                          clients=args.open_clients, duration=60.0, rate=rate, warmup=0.0)
            figures = database_figures(credentials["app_id"])
            processes = server_processes(server.pid)
            errors, log_offset = error_lines(log, log_offset)
            stored += result["accepted_events"]
            grown = figures["size_bytes"] - previous["size_bytes"]
            runs = {
                name: (job["runs"] - previous["jobs"].get(name, {}).get("runs", 0),
                       job["failures"] - previous["jobs"].get(name, {}).get("failures", 0))
                for name, job in figures["jobs"].items()
            }
            row = {
                "minute": minute,
                "events_per_s": result["events_per_s"],
                "latency_ms": result["latency_ms"],
                "statuses": result["statuses"],
                "not_200": sum(n for code, n in result["statuses"].items() if code != "200"),
                "workers_rss_mb": processes["workers"],
                "scheduler_rss_mb": sum(processes["scheduler"].values()),
                "db_bytes": figures["size_bytes"],
                "db_growth_bytes": grown,
                "fold_lag_s": figures["fold_lag_s"],
                "fold_backlog_rows": figures["fold_backlog_rows"],
                "accepted_events": result["accepted_events"],
                "job_runs": runs,
                "error_lines": errors,
            }
            minutes.append(row)
            previous = figures
            lat = result["latency_ms"]
            workers = processes["workers"].values()
            job_text = " ".join(f"{name} {n}" + (f"({f})" if f else "") for name, (n, f) in sorted(runs.items()) if n or f)
            print(
                f"{minute:>3} {result['events_per_s']:>9,.0f} {lat['p50']:>6.0f} {lat['p95']:>6.0f} {lat['p99']:>6.0f}"
                f" {lat['max']:>6.0f} {row['not_200'] + len(errors):>7} {sum(workers):>6.0f}/{max(workers, default=0):>4.0f}"
                f" {row['scheduler_rss_mb']:>8.0f} {figures['size_bytes'] / 1e6:>8,.1f}"
                f" {grown / max(result['accepted_events'], 1):>7.0f} {figures['fold_lag_s']:>6.1f} {job_text}",
                flush=True,
            )
        stored_after = count_events(credentials["app_id"])
    finally:
        compare.stop_server(server)

    summary = summarize(minutes, before=before, after=previous, stored=stored_after - stored_before,
                        accepted=stored, rate=rate, processes_start=processes)
    summary.update({"commit": compare._commit(), "rate": rate, "workers": args.workers,
                    "capacity_events_per_s": capacity["events_per_s"] if capacity else None,
                    "job_periods": args.job_periods, "load_average_end": os.getloadavg()})
    print_summary(summary)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "minutes": minutes, "capacity": capacity}, indent=2,
                                              default=str))


def summarize(minutes: list[dict], *, before: dict, after: dict, stored: int, accepted: int, rate: float,
              processes_start: dict) -> dict:
    throughput = [row["events_per_s"] for row in minutes]
    p99 = [row["latency_ms"]["p99"] for row in minutes]
    # Memory: the workers' mean RSS in the first full minute against the last; a
    # recycled worker (max_requests) starts small, so the mean is the fair figure.
    first_rss = statistics.mean(minutes[0]["workers_rss_mb"].values())
    last_rss = statistics.mean(minutes[-1]["workers_rss_mb"].values())
    worker_pids = [set(row["workers_rss_mb"]) for row in minutes]
    growth = after["size_bytes"] - before["size_bytes"]
    half = len(minutes) // 2
    def per_event(rows):
        events = sum(row["accepted_events"] for row in rows)
        return sum(row["db_growth_bytes"] for row in rows) / events if events else 0.0
    jobs = {
        name: {"runs": job["runs"] - before["jobs"].get(name, {}).get("runs", 0),
               "failures": job["failures"] - before["jobs"].get(name, {}).get("failures", 0),
               "last_error": job["last_error"], "last_duration_s": job["last_duration_s"]}
        for name, job in after["jobs"].items()
    }
    return {
        "minutes": len(minutes),
        "throughput_events_per_s": {"min": min(throughput), "max": max(throughput), "mean": statistics.mean(throughput)},
        "p99_ms": {"min": min(p99), "max": max(p99), "median": statistics.median(p99)},
        "p50_ms_median": statistics.median(row["latency_ms"]["p50"] for row in minutes),
        "workers_rss_mb": {"first_minute_mean": first_rss, "last_minute_mean": last_rss,
                           "change_pct": (last_rss - first_rss) / first_rss * 100},
        "worker_replacements": len(set().union(*worker_pids) - worker_pids[0]),
        "db_growth_bytes": growth,
        "events_accepted": accepted,
        "events_stored": stored,
        "bytes_per_event": growth / stored if stored else 0.0,
        "bytes_per_event_halves": [per_event(minutes[:half]), per_event(minutes[half:])],
        "fold_lag_s_max": max(row["fold_lag_s"] for row in minutes),
        "not_200": sum(row["not_200"] for row in minutes),
        "statuses": _merge(row["statuses"] for row in minutes),
        "error_lines": [line for row in minutes for line in row["error_lines"]],
        "jobs": jobs,
    }


def _merge(counters) -> dict:
    total: dict[str, int] = {}
    for counter in counters:
        for key, value in counter.items():
            total[key] = total.get(key, 0) + value
    return total


def print_summary(s: dict) -> None:
    t, p, m = s["throughput_events_per_s"], s["p99_ms"], s["workers_rss_mb"]
    halves = s["bytes_per_event_halves"]
    print(f"\nsummary (commit {s['commit']}, {s['minutes']} min at {s['rate']:,} events/s offered"
          + (f", half of {s['capacity_events_per_s']:,.0f} closed-loop" if s["capacity_events_per_s"] else "") + "):")
    print(f"  throughput   {t['min']:,.0f}–{t['max']:,.0f} events/s per minute (mean {t['mean']:,.0f})")
    print(f"  p99          {p['min']:.0f}–{p['max']:.0f} ms per minute (median {p['median']:.0f}); p50 median {s['p50_ms_median']:.0f} ms")
    print(f"  worker RSS   {m['first_minute_mean']:.0f} MB mean in minute 1, {m['last_minute_mean']:.0f} MB in the last"
          f" ({m['change_pct']:+.1f} %); {s['worker_replacements']} workers replaced")
    print(f"  database     +{s['db_growth_bytes'] / 1e6:,.1f} MB for {s['events_stored']:,} events stored"
          f" ({s['events_accepted']:,} accepted): {s['bytes_per_event']:.0f} B/event"
          f" ({halves[0]:.0f} in the first half, {halves[1]:.0f} in the second)")
    print(f"  fold lag     at most {s['fold_lag_s_max']:.1f} s at the minute marks (oldest unfolded delta)")
    print(f"  answers      {s['statuses']}; {len(s['error_lines'])} ERROR lines in the server's log")
    for line in s["error_lines"][:5]:
        print(f"    {line}")
    print("  jobs         " + ", ".join(
        f"{name} {job['runs']} runs" + (f" ({job['failures']} failed: {job['last_error']})" if job["failures"] else "")
        for name, job in sorted(s["jobs"].items())))
    verdicts = {
        "throughput steady (every minute within 5 % of the mean)": t["min"] >= 0.95 * t["mean"] and t["max"] <= 1.05 * t["mean"],
        "worker memory flat within 10 %": abs(m["change_pct"]) <= 10,
        "every accepted event stored": s["events_stored"] == s["events_accepted"],
        "no error (all 200, no ERROR line, no failed job)": s["not_200"] == 0 and not s["error_lines"]
        and not any(job["failures"] for job in s["jobs"].values()),
    }
    for claim, held in verdicts.items():
        print(f"  {'yes' if held else 'NO ':<3}  {claim}")
    s["verdicts"] = verdicts


if __name__ == "__main__":
    main()
