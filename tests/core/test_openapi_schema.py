"""The OpenAPI schema describes what a client may send and every answer it may get, so a
schema-driven fuzzer can generate valid and invalid bodies and hold each response to it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

INGESTION = {
    "/analytics/events": ["streamId", "clientId", "events"],
    "/api/analytics/event": ["events"],
}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "delete", "put", "patch"}:
                yield path, method, operation


@pytest.mark.parametrize("path", sorted(INGESTION))
def test_ingestion_request_bodies_are_declared_required_json_and_text_plain(schema, path):
    body = schema["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/json", "text/plain"}
    for media in body["content"].values():
        assert media["schema"]["required"] == INGESTION[path]
        assert media["schema"]["properties"]["events"]["type"] == "array"
        assert media["schema"]["properties"]["events"]["maxItems"] == 100


@pytest.mark.parametrize("path", sorted(INGESTION))
def test_ingestion_declares_its_refusals(schema, path):
    responses = schema["paths"][path]["post"]["responses"]
    assert {"400", "413", "415", "429", "503"} <= set(responses)


def test_every_operation_declares_503_with_retry_after(schema):
    for path, method, operation in operations(schema):
        response = operation["responses"].get("503")
        assert response is not None, (method, path)
        assert "Retry-After" in response["headers"], (method, path)


def test_every_operation_needing_credentials_declares_401_and_403(schema):
    secured = 0
    for path, method, operation in operations(schema):
        security = operation.get("security", schema.get("security", []))
        if security and {} not in security:
            secured += 1
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    assert secured >= 6


def test_every_operation_with_input_declares_400(schema):
    for path, method, operation in operations(schema):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "400" in operation["responses"], (method, path)


def test_the_format_parameter_admits_the_empty_value_taken_as_absent(schema, admin_client_api):
    formats = [
        parameter["schema"]
        for _, _, operation in operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] == "format"
    ]
    assert formats
    for format_schema in formats:
        assert {"type": "string", "maxLength": 0} in format_schema["anyOf"]
        assert "json" in format_schema["anyOf"][0]["enum"]
    response = admin_client_api.get("/admin/analytics/streams", {"format": ""})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
