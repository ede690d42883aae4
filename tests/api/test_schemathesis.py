"""schemathesis against a live server: requests generated from the OpenAPI document, read and
write, with a valid key of every scope, sent over HTTP to Django's live server on 127.0.0.1
(pytest-django's `live_server`, on the test database). No answer may be a 5xx or break the
schema. Bounded: a few examples per operation, so the whole run takes about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import keys
from tests.api.conftest import ALL_SCOPES, seed

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture
def live_api(transactional_db, live_server, org, alice, settings):
    """The schema as the live server serves it, and a key of every scope; the organization has data."""
    settings.CLACKS_API_REQUESTS_PER_MINUTE = 1_000_000  # the rate limit has its own tests
    from tests.factories import make_app

    app, _ = make_app(org, name="fuzzed")
    seed(app)
    token = keys.create_key(org, name="schemathesis", scopes=ALL_SCOPES, by=alice).token
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/?format=json")
    from dashboard.models import Funnel

    funnel = Funnel.objects.create(app=app, name="f", steps=[{"type": "command_execution", "name": "build"},
                                                              {"type": "feature_used", "name": ""}])  # fmt: skip
    # Positive examples go to this organization's real objects, so they reach the figures
    # rather than a 404; negative examples keep whatever path parameters were generated.
    from organizations.models import Credential
    from telemetry.models import Event

    known = {
        "org_id": org.public_id, "app_id": app.public_id, "funnel_id": funnel.pk,
        "event_id": str(Event.objects.filter(app=app).values_list("event_id", flat=True).first()),
        "credential_id": Credential.objects.filter(app=app).values_list("pk", flat=True).first(),
    }  # fmt: skip
    return schema, token, live_server.url, known


def test_the_api_answers_every_generated_request_within_its_schema(live_api):
    # Driven by hand rather than through schemathesis' pytest plugin (from_fixture), whose
    # lazy loader reads a private attribute that pytest 9 no longer has.
    schema, token, base_url, known = live_api
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    methods = {operation.method.upper() for operation in operations}
    assert {"GET", "POST", "PATCH", "PUT"} <= methods  # read and write

    failures, statuses = [], {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), database=None)  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                if case.path_parameters and mode is GenerationMode.POSITIVE:
                    case.path_parameters.update({k: v for k, v in known.items() if k in case.path_parameters})
                response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
                statuses.setdefault((operation.label, mode), []).append(response.status_code)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; all failures are reported together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    # Each operation was reached, and its positive examples got past validation to real answers.
    for operation in operations:
        positive = statuses.get((operation.label, GenerationMode.POSITIVE), [])
        assert any(200 <= status < 300 for status in positive), (operation.label, positive)
