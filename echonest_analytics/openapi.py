"""What the OpenAPI schema says about every operation alike: its error responses.

`document_error_responses` (a drf-spectacular postprocessing hook) adds to each
operation the refusals it can answer and does not yet declare, in the media types of
its success response, so a schema-driven fuzzer holds every answer to the schema:

- 400 when the operation takes parameters or a body (a bad query, path or body);
- 401 and 403 when it needs credentials (none or bad, and known but not allowed);
- 503 with Retry-After everywhere: the database is unavailable
  (`echonest_analytics.middleware.DatabaseUnavailableMiddleware`).

The `format` query parameter also admits the empty value: content negotiation
(`echonest_analytics.negotiation`) takes `?format=` as absent, like the other optional
query parameters.

A request body whose schema requires properties is marked required.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "A refusal. `error` (or DRF's `detail`) says what is wrong; `details` names the "
        "fields, per event index where it applies; the product-analytics endpoints add "
        '`"ok": false`.'
    ),
    "properties": {
        "ok": {"type": "boolean"},
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "details": {"type": "object", "additionalProperties": {}},
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
DESCRIPTIONS = {
    "400": "The request is invalid (a parameter or the body); nothing was changed.",
    "401": "No credentials, or credentials that are not valid (a bad token).",
    "403": "Authenticated, but not allowed (not staff, or a wrong dash key).",
    "413": "Body larger than 256 KiB (compressed or decompressed).",
    "415": "Content-Type other than JSON or text/plain, or a Content-Encoding other than gzip.",
    "429": "Too many requests (the ingestion rate limit); retry later.",
    "503": "Database unavailable; nothing was changed. Retry after Retry-After seconds.",
}
_METHODS = {"get", "put", "post", "patch", "delete"}


def _needs_credentials(operation: dict, default_security: list) -> bool:
    security = operation.get("security", default_security)
    return bool(security) and {} not in security


def _media_types(operation: dict) -> list[str]:
    for status, response in sorted(operation.get("responses", {}).items()):
        if status.startswith("2") and response.get("content"):
            return list(response["content"])
    return ["application/json"]


def _error_response(status: str, media_types: list[str]) -> dict[str, Any]:
    content = {
        media_type: {
            "schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
            if media_type == "application/json"
            else {"type": "string"}
        }
        for media_type in media_types
    }
    response: dict[str, Any] = {"description": DESCRIPTIONS[status], "content": content}
    if status == "503":
        response["headers"] = RETRY_AFTER
    return response


def _format_admits_empty(operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if (
            parameter.get("in") == "query"
            and parameter.get("name") == "format"
            and "enum" in schema
        ):
            parameter["schema"] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
            parameter.setdefault("description", "Output format; empty counts as absent.")


def document_error_responses(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    default_security = result.get("security", [])
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            _format_admits_empty(operation)
            body = operation.get("requestBody")
            if body and any(
                media.get("schema", {}).get("required")
                for media in body.get("content", {}).values()
            ):
                body["required"] = True
            statuses = ["503"]
            if operation.get("parameters") or body:
                statuses.append("400")
            if _needs_credentials(operation, default_security):
                statuses += ["401", "403"]
            responses = operation.setdefault("responses", {})
            media_types = _media_types(operation)
            for status in statuses:
                responses.setdefault(status, _error_response(status, media_types))
            if "503" in responses:
                responses["503"].setdefault("headers", RETRY_AFTER)
    return result
