"""The seed's endpoints, exactly: /api/settings/mlx/{status,start,stop}; and settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from legal_assistant.accounts.policy import Admin
from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.api.routes.engines import StartRequest, start_events
from legal_assistant.api.sse import sse
from legal_assistant.catalog import parse_model_id
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.service import MLXServerService

router = APIRouter(dependencies=[ApiKey])


@router.get("/api/settings")
async def get_settings(state: State) -> dict[str, Any]:
    return state.settings.public_dict()


@router.get("/api/settings/mlx/status")
async def mlx_status(state: State) -> dict[str, Any]:
    return MLXServerService(state.supervisor).get_status()


@router.post("/api/settings/mlx/start", response_model=None, dependencies=[Admin])
async def mlx_start(
    body: StartRequest, state: State, request: Request
) -> dict[str, Any] | EventSourceResponse:
    """Returns when the server is ready (or streams status with Accept: text/event-stream)."""
    model_id = body.model_id if body.model_id.startswith("mlx:") else f"mlx:{body.model_id}"
    ref = parse_model_id(model_id)
    if ref.provider != "mlx":
        raise LegalAssistantError("bad_request", "expected an mlx: model id")
    if "text/event-stream" in request.headers.get("accept", ""):
        return sse(start_events(state.supervisor, ref.id, request_language(request)))
    await state.supervisor.ensure_ready(ref)
    return MLXServerService(state.supervisor).get_status()


@router.post("/api/settings/mlx/stop", dependencies=[Admin])
async def mlx_stop(state: State) -> dict[str, Any]:
    service = MLXServerService(state.supervisor)
    await service.stop()
    return service.get_status()
