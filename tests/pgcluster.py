"""A throwaway PostgreSQL cluster in a temporary directory, on a port of its own.

Never the machine's shared server: other test runs use that one, and these
clusters are stopped, paused and lagged at will. Used by tests/topology.py (a
primary and its streaming standby, docs/replicas.md) and by the operations
tests that restart PostgreSQL under a running server (tests/operations/servers.py).

Standard library only: tests/topology.py imports it before Django is set up.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


def bindir() -> Path:
    """The server binaries (initdb, pg_ctl, pg_basebackup) of the newest PostgreSQL installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout
    return Path(out.strip())


def private_dir(prefix: str) -> tuple[Path, list[str]]:
    """A temporary directory the servers may write, and the command prefix that runs
    them as the postgres user when this process is root (initdb and PgBouncer both
    refuse root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() != 0:
        return root, []
    owner = pwd.getpwnam("postgres")
    os.chown(root, owner.pw_uid, owner.pw_gid)
    return root, ["runuser", "-u", "postgres", "--"]


class PostgresCluster:
    """A primary made by initdb or, given `primary`, a hot standby made from it by
    `pg_basebackup -R` (streaming; initdb's defaults already allow replication
    connections from 127.0.0.1 with -A trust). Started on a port from `free_port`."""

    def __init__(self, *, free_port: Callable[[], int], primary: PostgresCluster | None = None):
        self.bindir = bindir()
        self.root, self.as_postgres = private_dir("clacks-standby-" if primary else "clacks-pg-")
        self.data = self.root / "data"
        try:
            if primary is None:
                self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
            else:
                self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                          "-D", str(self.data), "-R", "-X", "stream", "--no-sync")  # fmt: skip
            for attempt in range(5):  # another process may take the port between the probe and the start
                self.port = free_port()
                try:
                    self.start()
                    break
                except subprocess.CalledProcessError:
                    if attempt == 4:
                        raise
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bindir / tool), *args], check=True, capture_output=True,
                       timeout=120)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
