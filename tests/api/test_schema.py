"""The OpenAPI document: valid OpenAPI 3, every API route in it, and the docs page without a CDN
or inline script and style (it must work under a CSP of script-src 'self')."""

from __future__ import annotations

import re

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from api.shapes import SHAPES, components


@pytest.fixture
def schema(client, db):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def _api_routes() -> set[tuple[str, str]]:
    """(path in OpenAPI form, method) of every API view wired up in the URLconf."""
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                view = getattr(pattern.callback, "view_class", None)
                if not route.startswith("api/v1/orgs/") or view is None:
                    continue
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                for method in ("get", "post", "put", "patch", "delete"):
                    if hasattr(view, method):
                        routes.add((path, method))

    walk(get_resolver().url_patterns)
    return routes


def test_every_api_route_is_documented_with_its_errors_and_security(schema):
    routes = _api_routes()
    assert len(routes) >= 30
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert routes == documented
    for path, method in routes:
        operation = schema["paths"][path][method]
        assert operation.get("summary"), f"{method} {path} has no summary"
        assert operation["security"] == [{"apiKey": []}], f"{method} {path}"
        assert {"200", "201"} & set(operation["responses"])
        for status in ("401", "403", "404", "429"):
            assert operation["responses"][status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["apiKey"]["description"],
    }  # fmt: skip


def test_every_figure_shape_is_a_component(schema):
    names = {shape.name for shape in SHAPES.values()}
    assert len(names) == len(SHAPES), "two shapes share a component name"
    assert names <= set(schema["components"]["schemas"])
    assert {name: schema["components"]["schemas"][name] for name in names} == components()


def test_the_docs_page_loads_everything_from_this_server_with_no_inline_code(client, db):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<style" not in html and " style=" not in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all(body.strip() == "" and "src=" in attrs for attrs, body in scripts)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    init = next(url for url in re.findall(r'src="([^"]+)"', html) if "script" in url)
    script = client.get(init.replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()
    for url in urls:
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url
