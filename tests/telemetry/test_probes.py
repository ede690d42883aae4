"""GET /health, /live, /ready (docs/protocol.md, Probes and metrics)."""


def test_health_reports_the_version_and_the_database(client, db, settings):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"] == settings.CLACKS_VERSION
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["database"]["pending_migrations"] == 0


def test_live_touches_nothing(client):
    # No `db` fixture: pytest-django makes any database access raise here.
    response = client.get("/live")

    assert response.status_code == 200


def test_ready_when_the_database_answers_and_nothing_is_pending(client, db):
    assert client.get("/ready").status_code == 200
