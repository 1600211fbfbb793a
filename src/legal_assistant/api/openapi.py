"""The OpenAPI schema, made to say what the app really answers (schemathesis checks it).

FastAPI's default documents a 422 validation error the app never sends: refusals are 4xx
with the app's error body (`{"error": {code, message, detail, type}}`; the OpenAI gateway
uses OpenAI's `{"error": {message, type, code, param}}`), and every route may refuse
(400 invalid input or Host, 401 API key, 403 cross-site request, 404, 429). Routes that
start engines may also answer 5xx with a classified error. The gateway reads its body
itself, so its request body is described here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from legal_assistant.errors import ERROR_CODES

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "type"],
            "properties": {
                "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                "message": {"type": "string"},
                "type": {"type": "string"},
                "detail": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "log_tail": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_REFUSED = {
    "description": "Refused, with nothing started or saved: see `error.code` (400 invalid "
    "input, 401 API key, 403 cross-site request, 404 unknown model, conversation or engine, "
    "429 busy).",
    "content": {"application/json": {"schema": _ERROR_REF}},
}
_ENGINE_FAILED = {
    "description": "The engine could not start or answer: see `error.code` "
    "(engine_not_installed, engine_crashed, timeout...).",
    "content": {"application/json": {"schema": _ERROR_REF}},
}
_GATEWAY_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "model": {
                        "type": "string",
                        "description": "provider:name, e.g. mlx:smollm2-135m",
                    },
                    "messages": {"type": "array", "items": {"type": "object"}},
                    "prompt": {"type": "string"},
                    "stream": {"type": "boolean"},
                    "max_tokens": {"type": "integer"},
                    "temperature": {"type": "number"},
                },
            }
        }
    },
}


def _sse(*events: str) -> dict[str, Any]:
    """Each server-sent event (OpenAPI 3.1: the `schema` of text/event-stream describes
    one event): a known name, and JSON data."""
    data = {"type": "string", "contentMediaType": "application/json", "contentSchema": {}}
    return {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {"event": {"enum": list(events)}, "data": data},
            }
        }
    }


_CHAT_EVENTS = _sse("meta", "status", "token", "done", "error")
_START_EVENTS = _sse("status", "done", "error")
# The gateway relays the engine's OpenAI stream: unnamed events, JSON chunks then [DONE].
_OPENAI_EVENTS = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "required": ["data"],
            "properties": {"event": {"const": "message"}, "data": {"type": "string"}},
        }
    }
}
_STREAMS = {
    "/api/chat/stream": _CHAT_EVENTS,
    "/api/engines/start": _START_EVENTS,
    "/api/settings/mlx/start": _START_EVENTS,
    "/v1/chat/completions": _OPENAI_EVENTS,
    "/v1/completions": _OPENAI_EVENTS,
}
# Routes that may start (or wait for) an engine and so fail with a 5xx.
_ENGINE_ROUTES = ("/api/engines/start", "/api/settings/mlx/start", "/v1/")


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorResponse"] = _ERROR
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, operations in schema.get("paths", {}).items():
            for method, op in operations.items():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                responses["4XX"] = _REFUSED
                if path.startswith(_ENGINE_ROUTES):
                    responses["5XX"] = _ENGINE_FAILED
                if path.startswith("/v1/") and method == "post":
                    op["requestBody"] = _GATEWAY_BODY
                if path in _STREAMS:
                    ok = responses.setdefault("200", {"description": "Successful Response"})
                    ok.setdefault("content", {}).update(_STREAMS[path])
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
