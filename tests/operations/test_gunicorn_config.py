"""config/gunicorn.py's worker hooks, run as gunicorn runs them but in a child process of their own."""

from __future__ import annotations

import subprocess

from tests.operations import servers

# Loads the app as a worker does, then runs the config's post_worker_init hook.
WORKER = """
import gc, runpy
config = runpy.run_path("config/gunicorn.py")
from config.wsgi import application
config["post_worker_init"](None)
print(gc.get_freeze_count())
"""


def test_a_worker_puts_the_loaded_app_out_of_the_garbage_collectors_way(tmp_path):
    env = servers.base_env(CLACKS_VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    servers.prepare(env)
    done = subprocess.run(
        [str(servers.BIN / "python"), "-c", WORKER], cwd=servers.REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    # Django, DRF and the app's modules: tens of thousands of objects that full
    # collections no longer walk.
    assert int(done.stdout) > 20_000
