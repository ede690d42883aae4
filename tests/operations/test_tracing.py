"""OpenTelemetry traces reach an OTLP/HTTP receiver started here when
OTEL_EXPORTER_OTLP_ENDPOINT is set, and cost nothing when it is not (config/tracing.py)."""

from __future__ import annotations

import gzip
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.factories import make_batch
from tests.operations import servers
from tests.operations.test_settings import fresh_env


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: POST /v1/traces with a protobuf body."""

    def __init__(self):
        self.spans: list[dict] = []
        self.resources: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    receiver.resources.append(resource)
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            receiver.spans.append({
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                            })  # fmt: skip
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        for attempt in range(5):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", servers.free_port()), Handler)
                break
            except OSError:
                if attempt == 4:
                    raise
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, condition, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [span for span in list(self.spans) if condition(span)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no such span in {len(self.spans)} received")


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture
def receiver():
    started = Receiver()
    yield started
    started.server.shutdown()
    started.server.server_close()


def test_an_ingest_request_is_traced_from_request_to_view_to_sql(gunicorn, receiver):
    server = gunicorn(workers=1, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SERVICE_NAME="clacks-test")
    app = servers.create_app(server.env, name="traced")
    batch = make_batch(2)
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answer = servers.signed_post(server.port, app, orjson.dumps(batch), headers={
        "X-Request-ID": "trace-me-0001", "traceparent": f"00-{caller_trace}-{caller_span}-01",
    })  # fmt: skip
    assert answer.status == 200

    [request] = receiver.wait_for(lambda span: span["attributes"].get("clacks.request_id") == "trace-me-0001"
                                  and span["kind"] == 2)  # fmt: skip  # SERVER
    assert request["name"] == "POST ingest"
    assert request["trace_id"] == caller_trace and request["parent"] == caller_span  # the caller's trace goes on
    assert request["attributes"]["http.response.status_code"] == 200
    assert request["attributes"]["url.path"] == app.path
    [view] = receiver.wait_for(lambda span: span["parent"] == request["span_id"] and span["name"].startswith("view "))
    assert view["name"] == "view telemetry.views.IngestView" and view["attributes"]["clacks.request_id"] == "trace-me-0001"
    # The events' statement (an INSERT, or a WITH ... INSERT on PostgreSQL) is a child of the view.
    receiver.wait_for(lambda span: span["parent"] == view["span_id"]
                      and re.search(r"INTO \"?telemetry_event\b", span["attributes"].get("db.statement", "")))  # fmt: skip
    inserts = [span for span in receiver.spans if span["parent"] == view["span_id"] and "db.statement" in span["attributes"]]
    assert {span["attributes"]["db.system"] for span in inserts} == {servers.on_postgres() and "postgresql" or "sqlite"}
    statements = " ".join(span["attributes"]["db.statement"] for span in inserts)
    # Statements only: no parameter reaches the trace.
    assert batch["events"][0]["event_id"] not in statements and app.secret not in statements
    assert all(span["trace_id"] == caller_trace for span in inserts)
    assert {"service.name": "clacks-test"}.items() <= receiver.resources[0].items()

    # Probes are not traced.
    assert servers.request(server.port, "GET", "/health").status == 200
    time.sleep(1.5)
    assert not [span for span in receiver.spans if span["attributes"].get("url.path") == "/health"]


# What tracing would load. (redis-py imports OpenTelemetry's metrics API by itself
# when it is installed, so "opentelemetry" alone is no sign of tracing.)
TRACING_MODULES = ["config.tracing", "opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"]


def test_without_an_endpoint_tracing_is_not_even_imported(tmp_path):
    script = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings');"
        "from django.core.wsgi import get_wsgi_application; from django.test import Client; get_wsgi_application();"
        "from django.conf import settings;"
        "assert Client().get('/live').status_code == 200;"
        "print(sorted(m for m in sys.modules if m in TRACING_MODULES), 'config.tracing.middleware' in settings.MIDDLEWARE)"
    ).replace("TRACING_MODULES", repr(TRACING_MODULES))
    env = fresh_env(tmp_path, SECRET_KEY="k" * 50)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    done = subprocess.run([str(servers.BIN / "python"), "-c", script], cwd=servers.REPO, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[] False"
