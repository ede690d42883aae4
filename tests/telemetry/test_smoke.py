from telemetry.models import Event
from tests.factories import make_batch


def test_it_stores_a_signed_batch(signed_post, app):
    response = signed_post(app, make_batch(3))

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    assert response["X-Clacks-Overhead"] == "GNU Terry Pratchett"
    assert Event.objects.for_app(app).count() == 3
