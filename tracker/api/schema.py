"""OpenAPI post-processing: document the error answers every operation can give.

drf-spectacular documents only the success response; clients (and schemathesis's
conformance check) also need the 400 / 401 / 403 / 404 bodies DRF sends. The FHIR endpoint
answers in FHIR's media type, its refusals as OperationOutcome resources, and is documented so.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENTS: dict[str, dict[str, Any]] = {
    "ErrorDetail": {
        "type": "object",
        "description": "A refusal that is not about one field (not signed in, not allowed, not found).",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationErrors": {
        "type": "object",
        "description": "DRF's validation shape: each field sent (or non_field_errors / detail) with its messages.",
        "additionalProperties": {},
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
    "401": ("ErrorDetail", "No valid credentials were given."),
    "403": ("ErrorDetail", "The caller's role may not do this."),
    "404": ("ErrorDetail", "No such record within the caller's reach (or no such page)."),
}
METHODS = ("get", "post", "put", "patch", "delete")


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the error responses (as shared components) to every API operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(ERROR_COMPONENTS)
    schemas.update(FHIR_COMPONENTS)
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if FHIR_MEDIA_TYPE in responses.get("200", {}).get("content", {}):
                document_fhir_responses(responses)
                continue
            for code, (component, description) in ERRORS.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                    },
                )
    return result


def document_fhir_responses(responses: dict[str, Any]) -> None:
    """A FHIR operation: a Bundle on success; every refusal (406 included) an OperationOutcome."""
    responses["200"]["content"] = {FHIR_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FHIRBundle"}}}
    outcome = {FHIR_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}
    for code, (_, description) in ERRORS.items():
        responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        if code != "200":
            response["content"] = outcome
