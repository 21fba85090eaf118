"""The OpenAPI description matches the routes the gateway really serves, so it cannot drift."""

from __future__ import annotations

import json

from chorus.webgate.app import OPENAPI_PATH, create_app
from chorus.webgate.config import Settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def documented() -> set[tuple[str, str]]:
    spec = json.loads(OPENAPI_PATH.read_text())
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS}


def served() -> set[tuple[str, str]]:
    app = create_app(Settings())  # routes are registered here; backends connect only on startup
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource.canonical.startswith("/api/") and route.method != "HEAD"}


def test_every_api_route_is_documented_and_every_documented_route_exists():
    assert served() == documented()


def test_the_document_is_openapi_3_with_an_operation_id_and_an_error_answer_everywhere():
    spec = json.loads(OPENAPI_PATH.read_text())
    assert spec["openapi"].startswith("3.")
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("operationId"), (method, path)
            assert "default" in operation["responses"], f"{method} {path}: no error answer documented"


async def test_the_gateway_serves_the_document(api):
    status, body = await api.call("GET", "/api/openapi.json")
    assert status == 200
    assert body == json.loads(OPENAPI_PATH.read_text())
