#!/usr/bin/env python3
"""Load generator for the ingest API: signed SDK-shaped batches from N concurrent clients.

Each client is its own process with one keep-alive connection (http.client),
so the generator is not held back by the GIL on a 2-core machine; the CPU the
clients use is measured and printed, as is the whole machine's, so a run
shows whether the server or the generator was the limit.

Closed loop (default): every client sends its next batch as soon as the last
one is answered. Open loop (--rate): batches are scheduled at a steady rate
and latency is measured from the scheduled send time, so a stalled server
shows up in the percentiles instead of silently slowing the sender down
(coordinated omission).

    .venv/bin/python bench/ingest_load.py --url http://127.0.0.1:8501 --create --duration 20
    .venv/bin/python bench/ingest_load.py --url ... --org-id org_x --app-id app_y --secret S --rate 5000

--create runs `manage.py create_app --json` with this environment's
DATABASE_URL, which must be the running server's database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdk_events import BodyFactory, signed_headers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# --- Results -------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def cpu_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    ticks = [int(value) for value in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks[:8]) - idle) / hz, sum(ticks[:8]) / hz


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- One client ------------------------------------------------------------------------


def _client(index: int, options: dict, ready, go, start_at, results) -> None:
    """One client process: build bodies, wait for the common start, send, report."""
    target = urlsplit(options["url"])
    path = options["path"]
    batch_size = options["batch_size"]
    factory = BodyFactory(batch_size=batch_size, seed=None)
    connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=options["timeout"])
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    accepted = duplicates = 0
    ready.put(index)
    go.wait()
    begin = start_at.value
    time.sleep(max(0.0, begin - time.monotonic()))  # all clients start together
    cpu_before = _own_cpu()
    measure_from = begin + options["warmup"]
    end = measure_from + options["duration"] if options["duration"] else float("inf")
    max_requests = options["requests_per_client"]
    rate = options["rate"]
    # Open loop: client k takes slots k, k+N, k+2N... of one steady schedule.
    interval = options["clients"] * batch_size / rate if rate else 0.0
    scheduled = begin + index * batch_size / rate if rate else 0.0
    sent = 0

    while sent < max_requests:
        if rate:
            if scheduled >= end:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elif time.monotonic() >= end:
            break
        body = factory.body()
        headers = signed_headers(options["secret"], body, timestamp=int(time.time()), batch_size=batch_size)
        started = scheduled if rate else time.monotonic()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()  # reopened by the next request
            status, answer = f"error:{exc.__class__.__name__}", b""
        finished = time.monotonic()
        if started >= measure_from:
            latencies.append(finished - started)
            statuses[status] += 1
            if status in ("200", "207"):
                reply = orjson.loads(answer)
                accepted += reply.get("accepted", 0)
                duplicates += reply.get("duplicates", 0)
        sent += 1
        scheduled += interval

    connection.close()
    results.put(
        {
            "latencies": latencies,
            "statuses": dict(statuses),
            "accepted": accepted,
            "duplicates": duplicates,
            "cpu": _own_cpu() - cpu_before,
            "first_request_at": measure_from,
        }
    )


# --- The run ---------------------------------------------------------------------------


def create_app(*, name: str | None = None) -> dict:
    """Credentials of a new app, from `manage.py create_app --json` (this environment's DATABASE_URL)."""
    name = name or f"bench-{uuid.uuid4().hex[:8]}"
    output = subprocess.run(
        [str(REPO / ".venv/bin/python"), str(REPO / "manage.py"), "create_app", "--org", "Clacks bench", "--app", name, "--json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    return json.loads(output)


def wait_until_live(url: str, *, timeout: float = 30.0) -> None:
    target = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=2)
            connection.request("GET", "/live")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer /live within {timeout:.0f} s")
        time.sleep(0.2)


def run_load(
    *,
    url: str,
    org_id: str,
    app_id: str,
    secret: str,
    batch_size: int = 100,
    clients: int = 8,
    duration: float | None = 20.0,
    requests: int | None = None,
    rate: float | None = None,
    warmup: float = 2.0,
    timeout: float = 30.0,
) -> dict:
    """Run one load test and return its figures (see `report`)."""
    if not duration and not requests:
        raise ValueError("give a duration or a number of requests")
    options = {
        "url": url,
        "path": f"/v1/ingest/{org_id}/{app_id}",
        "secret": secret,
        "batch_size": batch_size,
        "clients": clients,
        "duration": duration,
        "requests_per_client": -(-requests // clients) if requests else float("inf"),
        "rate": rate,
        "warmup": warmup if duration else 0.0,
        "timeout": timeout,
    }
    context = multiprocessing.get_context("fork")
    ready, results = context.Queue(), context.Queue()
    go = context.Event()
    start_at = context.Value("d", 0.0)
    workers = [
        context.Process(target=_client, args=(i, options, ready, go, start_at, results), daemon=True)
        for i in range(clients)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=60)
    start_at.value = time.monotonic() + 0.05
    go.set()
    time.sleep(max(0.0, start_at.value + options["warmup"] - time.monotonic()))
    busy_before, total_before = cpu_busy_seconds()
    wall_before = time.monotonic()
    load_before = os.getloadavg()[0]
    parts = [results.get() for _ in workers]
    wall = time.monotonic() - wall_before
    busy_after, total_after = cpu_busy_seconds()
    for worker in workers:
        worker.join()

    latencies = sorted(value for part in parts for value in part["latencies"])
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    ok_requests = statuses["200"] + statuses["207"]
    accepted = sum(part["accepted"] for part in parts)
    cores = os.cpu_count() or 1
    return {
        "mode": f"open loop at {rate:g} events/s" if rate else "closed loop",
        "batch_size": batch_size,
        "clients": clients,
        "seconds": wall,
        "requests": len(latencies),
        "ok_requests": ok_requests,
        "statuses": dict(sorted(statuses.items())),
        "accepted_events": accepted,
        "duplicates": sum(part["duplicates"] for part in parts),
        "events_per_s": accepted / wall if wall else 0.0,
        "requests_per_s": len(latencies) / wall if wall else 0.0,
        "offered_events_per_s": rate,
        "latency_ms": {
            "p50": percentile(latencies, 0.50) * 1000,
            "p95": percentile(latencies, 0.95) * 1000,
            "p99": percentile(latencies, 0.99) * 1000,
            "max": (latencies[-1] if latencies else 0.0) * 1000,
        },
        # Client CPU includes the warm-up, so it slightly overstates the share.
        "client_cpu_cores": sum(part["cpu"] for part in parts) / (wall + options["warmup"]) if wall else 0.0,
        "machine_busy_cores": (busy_after - busy_before) / (total_after - total_before) * cores
        if total_after > total_before
        else 0.0,
        "cores": cores,
        "load_average_before": load_before,
    }


def report(result: dict) -> str:
    lat = result["latency_ms"]
    statuses = ", ".join(f"{code}: {count}" for code, count in result["statuses"].items()) or "none"
    lines = [
        f"ingest load: {result['mode']}, batch {result['batch_size']}, {result['clients']} clients, "
        f"{result['seconds']:.1f} s measured",
        f"  events/s    {result['events_per_s']:,.0f} accepted"
        + (f" (offered {result['offered_events_per_s']:,.0f})" if result["offered_events_per_s"] else ""),
        f"  requests/s  {result['requests_per_s']:,.1f}   statuses: {statuses}   duplicates: {result['duplicates']}",
        f"  latency ms  p50 {lat['p50']:.1f}   p95 {lat['p95']:.1f}   p99 {lat['p99']:.1f}   max {lat['max']:.1f}",
        f"  cpu         clients {result['client_cpu_cores']:.2f} cores, whole machine {result['machine_busy_cores']:.2f}"
        f" of {result['cores']} cores busy (load average before: {result['load_average_before']:.2f})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL (loopback only)")
    parser.add_argument("--org-id")
    parser.add_argument("--app-id")
    parser.add_argument("--secret", help="the app's HMAC secret")
    parser.add_argument("--create", action="store_true", help="create an app with manage.py create_app --json")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--duration", type=float, help="seconds to measure after the warm-up (default 20)")
    group.add_argument("--requests", type=int, help="total requests instead of a duration (no warm-up)")
    parser.add_argument("--rate", type=float, help="open loop: events/s offered at a steady rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent but not counted (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    host = urlsplit(args.url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        parser.error("--url must be a loopback address")
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be 1 to 1000 (docs/protocol.md, Body)")
    if args.create:
        credentials = create_app()
        args.org_id, args.app_id, args.secret = credentials["org_id"], credentials["app_id"], credentials["secret"]
    if not (args.org_id and args.app_id and args.secret):
        parser.error("give --org-id, --app-id and --secret, or --create")
    if args.duration is None and args.requests is None:
        args.duration = 20.0
    wait_until_live(args.url)
    result = run_load(
        url=args.url,
        org_id=args.org_id,
        app_id=args.app_id,
        secret=args.secret,
        batch_size=args.batch_size,
        clients=args.clients,
        duration=args.duration,
        requests=args.requests,
        rate=args.rate,
        warmup=args.warmup,
    )
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
