"""The OpenAPI schema's error responses: every operation documents the JSON error shape."""

ERROR_RESPONSES = {
    "400": "Invalid input or a refused request",
    "401": "Not authenticated",
    "403": "Not allowed",
    "404": "Not found (or not yours)",
    "413": "Request body over the size limit",
    "415": "Unsupported media type",
    "409": "Conflict with the shop's state",
    "429": "Throttled",
    "503": "Database unavailable; retry",
}


def document_error_responses(result, generator, request, public):
    """Document the JSON error shape ``{"code","detail"}`` on every operation (a drf-spectacular hook)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
        "required": ["code", "detail"],
        "additionalProperties": True,
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for status_code, description in ERROR_RESPONSES.items():
                operation["responses"].setdefault(status_code, {"description": description, "content": error})
    return result
