"""The image's HEALTHCHECK: GET /live on the port gunicorn binds (GUNICORN_BIND).

/live touches nothing but the process, so a database outage never gets the
container restarted (README, Probes). The port follows GUNICORN_BIND so that a
container run with host networking on another port is still checked.
"""

import os
import sys
import urllib.request

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",")[0].strip()
port = bind.rsplit(":", 1)[1] if ":" in bind and not bind.startswith("unix:") else "8000"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/live", timeout=4) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as error:
    print(f"/live on port {port}: {error}", file=sys.stderr)
    sys.exit(1)
