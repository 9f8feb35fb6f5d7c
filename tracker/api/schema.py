"""OpenAPI post-processing: document the error answers every operation can give.

drf-spectacular documents only the success response; clients (and schemathesis's
conformance check) also need the 400 / 401 / 403 / 404 bodies DRF sends.
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
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code, (component, description) in ERRORS.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                    },
                )
    return result
