"""gunicorn settings, used by `make serve` and the Docker image.

Every value comes from the environment (README, Operations). Besides the
usual knobs this file switches prometheus_client to multiprocess mode, so
/metrics sums every worker's counters, including those of workers that were
restarted, makes gunicorn's own log lines JSON like the app's, and runs the
periodic jobs beside the workers (`manage.py run_scheduler`).
"""

import gc
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# The master loads config.logs for its log formatter before gunicorn adds the
# working directory to sys.path.
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))


def _int(name: str, default: int) -> int:
    value = os.getenv(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r}: expected a whole number") from None


def _cores() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


bind = os.getenv("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers, 2 per core + 1: ingest is short requests that wait on the
# database, and each worker keeps its own connection (CONN_MAX_AGE).
workers = _int("WEB_CONCURRENCY", _cores() * 2 + 1)
# More than 1 switches to the gthread worker; each thread has its own connection.
threads = _int("GUNICORN_THREADS", 1)
# gunicorn's own workers, with X-Clacks-Overhead on the errors gunicorn answers
# itself (malformed requests, request line or headers too large).
worker_class = (
    "config.gunicorn_worker.ThreadOverheadWorker" if threads > 1 else "config.gunicorn_worker.SyncOverheadWorker"
)
# A request still running after this many seconds gets its worker restarted.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM, workers finish the requests they hold for up to this long.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle each worker after about this many requests (bounds slow leaks); the
# jitter keeps the workers from restarting all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1000)
proc_name = "clacks"
# Heartbeat files in memory: a slow container disk must not make workers look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn 25+ opens a control socket at one path per user; several servers on
# one machine would fight over it, so it is off unless a path is given.
control_socket_disable = not os.getenv("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]


def post_worker_init(worker):
    # The app is loaded: some 85,000 objects (Django, DRF, the app's modules) that
    # live as long as the worker. Frozen, the garbage collector stops walking them
    # in every full collection, which took 50-200 ms on a 2-core machine and
    # stalled the request that set it off.
    gc.freeze()


# --- Background jobs ----------------------------------------------------------------
# The periodic jobs (telemetry.scheduler) run in one child process of the master,
# started once the server is ready, restarted on a reload (SIGHUP: new code) and
# stopped when it exits, so `make serve` and the image need no cron. A process
# rather than a thread of the master: the master forks the workers, and a thread
# holding a lock or a database connection at a fork would hand both to every
# worker. Not one per worker either: N schedulers would only race for the same
# leases. The child exits at once when CLACKS_SCHEDULER is off, stops by itself if
# the master dies without calling on_exit, and writes no metrics files.


def when_ready(server):
    import subprocess

    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    command = [sys.executable, str(BASE_DIR / "manage.py"), "run_scheduler", "--with-server"]
    server.clacks_scheduler = subprocess.Popen(command, cwd=BASE_DIR, env=env)


def on_exit(server):
    import subprocess

    scheduler = getattr(server, "clacks_scheduler", None)
    if scheduler is None or scheduler.poll() is not None:
        return
    scheduler.terminate()  # a job in progress is interrupted, its lease released
    try:
        scheduler.wait(timeout=15)
    except subprocess.TimeoutExpired:
        scheduler.kill()
        scheduler.wait()


def on_reload(server):
    on_exit(server)
    when_ready(server)


# --- Logs -------------------------------------------------------------------------
# The app logs one JSON line per request (config.middleware.request_log), so
# gunicorn's access log is off; GUNICORN_ACCESSLOG=- turns it on, as JSON lines too.
accesslog = os.getenv("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.getenv("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logs.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stdout"], "propagate": False},
        # With a logconfig_dict gunicorn always calls its access logger; the level mutes it.
        "gunicorn.access": {"level": "INFO" if accesslog else "CRITICAL", "handlers": ["stdout"], "propagate": False},
    },
}

# --- Metrics across workers ---------------------------------------------------------
# prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is first imported,
# which happens in each worker after this file ran in the master. One
# directory per server: two servers sharing one would add up each other's counts.
metrics_dir = Path(
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", str(Path(os.getenv("CLACKS_VAR_DIR", BASE_DIR / "var")) / "prometheus")
    )
)
metrics_dir.mkdir(parents=True, exist_ok=True)


def on_starting(server):
    # Values left by a previous run would be added to this run's.
    for path in metrics_dir.glob("*.db"):
        path.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    fold_dead_worker(worker.pid)
    multiprocess.mark_process_dead(worker.pid, str(metrics_dir))  # drops its live gauges


def fold_dead_worker(pid: int) -> None:
    """Add a dead worker's counters and histograms to one archive file per kind and
    delete its own files. Without this, each worker recycled by max_requests leaves
    files behind for good and every scrape reads more of them. Sums are unchanged:
    prometheus_client adds up counter and histogram files whatever their names.
    The lock keeps /metrics (telemetry.metrics.export) from reading half a fold."""
    import fcntl

    from prometheus_client.mmap_dict import MmapedDict

    with open(metrics_dir / "fold.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for kind in ("counter", "histogram", "summary"):
            dead = metrics_dir / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            archive = MmapedDict(str(metrics_dir / f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(dead)):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            dead.unlink()
