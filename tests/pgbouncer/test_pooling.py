"""Clacks through PgBouncer in transaction pooling mode keeps no state in a server
session: each transaction may run on another server connection (docs/pgbouncer.md)."""

from __future__ import annotations

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from organizations import services
from telemetry.models import Event
from tests.factories import make_batch
from tests.topology import PgBouncer, servers

pytestmark = pytest.mark.postgres


def bouncer() -> PgBouncer:
    return next(server for server in servers() if isinstance(server, PgBouncer))


# Advisory locks held in this database, by any session (pg_locks shows every session's).
ADVISORY_LOCKS = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


def server_count(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_the_run_talks_to_pgbouncer_in_transaction_mode(db):
    assert int(connection.settings_dict["PORT"]) == bouncer().port
    assert server_count("SELECT inet_server_port()") != bouncer().port  # PostgreSQL's own port, behind it
    pools = [line.split("|") for line in bouncer().admin("SHOW POOLS").splitlines()]
    ours = [pool for pool in pools if pool[0] == connection.settings_dict["NAME"]]
    assert ours and ours[0][-1] == "transaction"


def test_the_settings_turn_off_what_holds_session_state(settings):
    database = settings.DATABASES["default"]
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert database["OPTIONS"]["prepare_threshold"] is None
    assert "options" not in database["OPTIONS"]  # PgBouncer refuses the startup parameter


def test_no_statement_is_prepared_even_with_server_side_binding(db):
    # Django binds parameters on the client by default, which prepares nothing; with
    # server-side binding psycopg would prepare a statement on its 6th run, in one
    # server session that the next transaction may not get.
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        for number in range(8):
            conn.execute("SELECT %s::int", [number]).fetchall()
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0


def test_iterating_a_queryset_opens_no_server_side_cursor(db, app, signed_post):
    # Outside a transaction Django declares it WITH HOLD: it would outlive the
    # transaction, in a server session the next fetch may not reach.
    assert signed_post(app, make_batch(5)).status_code == 200
    rows = Event.objects.filter(app=app).values_list("event_id", flat=True).iterator(chunk_size=2)
    next(rows)
    assert server_count("SELECT count(*) FROM pg_cursors") == 0
    assert len([next(rows) for _ in range(4)]) == 4


def test_first_run_setup_takes_a_lock_that_ends_with_its_transaction(transactional_db):
    services.create_first_admin(username="root", email="root@example.com", password="a long passphrase")
    assert server_count(ADVISORY_LOCKS) == 0


def test_ingest_dashboard_and_the_jobs_leave_no_session_state(transactional_db, client, alice, org, app, signed_post):
    assert signed_post(app, make_batch(3)).status_code == 200
    client.force_login(alice)
    assert client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/").status_code == 200
    assert call_command("run_scheduler", "--once").startswith("Done: ")
    assert server_count(ADVISORY_LOCKS) == 0
    assert server_count("SELECT count(*) FROM pg_prepared_statements") == 0
    assert server_count("SELECT count(*) FROM pg_cursors") == 0
