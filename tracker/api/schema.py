"""OpenAPI post-processing: document the error answers each operation can give, and the id range.

drf-spectacular documents only the success response; clients (and schemathesis's
conformance check) also need the bodies DRF sends when it refuses: 400, 401 and 403 on every
operation (a malformed query or a NUL is a 400 anywhere; a signed-in user with no role in a
clinic gets 403 everywhere), 404 where a record is looked up by id or a page is asked for, and
415 where a body is read (a Content-Type other than application/json). Path ids are documented
with the range a key can hold. The FHIR endpoint answers in FHIR's media type, its refusals as
OperationOutcome resources, and is documented so. tests/test_api_limits.py compares these with
the server's real answers.
"""

from __future__ import annotations

from typing import Any

from tracker.api.filters import MAX_ID

ERROR_COMPONENTS: dict[str, dict[str, Any]] = {
    "ErrorDetail": {
        "type": "object",
        "description": "A refusal that is not about one field (not signed in, not allowed, not found, "
        "a body that is not JSON), in plain words under `detail`.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationErrors": {
        "type": "object",
        "description": "DRF's validation shape. Each field sent that was refused, with its messages; a nested "
        "field (e.g. `regimen`) or a list's item (by its index, from 0, e.g. under `answers`) holds an object "
        "of the same shape. `non_field_errors` refuses the request as a whole. `detail` alone when the body "
        "or the query could not be read (malformed or too deeply nested JSON, a NUL, a number too large "
        "for any id).",
        "properties": {
            "detail": {"type": "string"},
            "non_field_errors": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": {
            "anyOf": [{"type": "array", "items": {}}, {"type": "object"}, {"type": "string"}],
        },
    },
}

FHIR_MEDIA_TYPE = "application/fhir+json"
FHIR_COMPONENTS: dict[str, dict[str, Any]] = {
    "FHIRBundle": {
        "type": "object",
        "description": "A FHIR R4 Bundle of type collection (http://hl7.org/fhir/R4/bundle.html); see docs/fhir.md.",
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["collection"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"fullUrl": {"type": "string"}, "resource": {"type": "object"}},
                    "required": ["fullUrl", "resource"],
                },
            },
        },
        "required": ["resourceType", "type", "entry"],
    },
    "OperationOutcome": {
        "type": "object",
        "description": "A FHIR R4 OperationOutcome (http://hl7.org/fhir/R4/operationoutcome.html): why the "
        "request was refused.",
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                    },
                    "required": ["severity", "code"],
                },
            },
        },
        "required": ["resourceType", "issue"],
    },
}

ERRORS: dict[str, tuple[str, str]] = {
    "400": ("ValidationErrors", "The request was refused; the body names each field and why."),
    "401": (
        "ErrorDetail",
        "No valid credentials were given. Send `Authorization: Token <key>` (WWW-Authenticate says so).",
    ),
    "403": ("ErrorDetail", "The caller's role may not do this (or a session's write lacks its CSRF token)."),
    "404": ("ErrorDetail", "No such record within the caller's reach, or no such page."),
    "415": ("ErrorDetail", "The body was not sent as `Content-Type: application/json`, the only one read."),
}
METHODS = ("get", "post", "put", "patch", "delete")
ID_DESCRIPTION = (
    "The record's id, a whole number from 1 to 2^63-1. Any other value, or a record outside the caller's "
    "reach, answers 404."
)


def applies(code: str, path: str, method: str, operation: dict[str, Any]) -> bool:
    """Whether the server can give this refusal here (see the module docstring)."""
    if code == "404":
        return "{" in path or method == "get"  # a lookup by id, or a page of a list
    if code == "415":
        return "requestBody" in operation  # only a view that reads the body parses it
    return True


def document_path_ids(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path" and parameter.get("name") == "id":
            parameter["schema"] = {**parameter["schema"], "minimum": 1, "maximum": MAX_ID}
            parameter["description"] = ID_DESCRIPTION


def error_response(code: str, component: str, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }
    if code == "401":
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "The scheme to use: `Token`."}
        }
    return response


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the error responses (as shared components) to each API operation where they can happen."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(ERROR_COMPONENTS)
    schemas.update(FHIR_COMPONENTS)
    for path, path_item in result.get("paths", {}).items():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            document_path_ids(operation)
            responses = operation.setdefault("responses", {})
            if FHIR_MEDIA_TYPE in responses.get("200", {}).get("content", {}):
                document_fhir_responses(responses)
                continue
            for code, (component, description) in ERRORS.items():
                if applies(code, path, method, operation):
                    responses.setdefault(code, error_response(code, component, description))
    return result


def document_fhir_responses(responses: dict[str, Any]) -> None:
    """A FHIR operation: a Bundle on success; every refusal (406 included) an OperationOutcome."""
    responses["200"]["content"] = {FHIR_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FHIRBundle"}}}
    outcome = {FHIR_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}
    for code, (_, description) in ERRORS.items():
        if code != "415":  # a GET: no body is read
            responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        if code != "200":
            response["content"] = outcome
