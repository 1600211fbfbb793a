"""Supervised engines: list, start, stop, logs, and a live stream of transitions."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from legal_assistant.accounts.policy import Admin, EngineStart
from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.api.sse import sse
from legal_assistant.catalog import parse_model_id
from legal_assistant.chat.status import StatusFormatter
from legal_assistant.chat.turn import ChatEvent
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.runtime.lifecycle import Engine, Lease
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.runtime.warmup import Warmer

router = APIRouter(dependencies=[ApiKey])


class StartRequest(BaseModel):
    model_id: str
    # Start in the background, prefill the chat system prompt, and return at once (202).
    warm: bool = False
    language: Language | None = None  # of the system prompt to prefill (default: request's)


def engines_payload(supervisor: Supervisor) -> dict[str, Any]:
    return {
        **supervisor.residency(),
        "engines": [e.status() for e in supervisor.engines()],
    }


@router.get("/api/engines")
async def list_engines(state: State) -> dict[str, Any]:
    return engines_payload(state.supervisor)


@router.get("/api/engines/events", response_class=EventSourceResponse)
async def engine_events(state: State) -> EventSourceResponse:
    """`snapshot` (every engine's status) first, then one `engine` event per transition."""

    async def gen() -> AsyncIterator[dict[str, Any]]:
        with state.supervisor.bus.subscribe() as sub:
            snapshot = engines_payload(state.supervisor)
            yield {"event": "snapshot", "data": json.dumps(snapshot)}
            async for ev in sub:
                engine = state.supervisor.get(ev.engine)
                data = ev.to_dict()
                data["status"] = engine.status() if engine else None
                yield {"event": "engine", "data": json.dumps(data)}

    return EventSourceResponse(gen(), ping=15, send_timeout=30)


@router.get("/api/engines/{engine_id}/logs", dependencies=[Admin])  # may hold prompts
async def engine_logs(
    engine_id: str, state: State, tail: int = Query(200, ge=1, le=5000)
) -> dict[str, Any]:
    engine = state.supervisor.get(engine_id)
    if engine is None:
        raise LegalAssistantError("not_found", f"engine {engine_id[:40]!r}")
    return {"engine": engine.id, "model": engine.ref.id, "lines": engine.logs(tail)}


@router.get("/api/engines/{engine_id}/slots", dependencies=[Admin])
async def engine_slots(engine_id: str, state: State) -> dict[str, Any]:
    """llama.cpp's slots: busy or idle, and the tokens each holds (its prompt cache).
    Other kinds, and an engine that is not running, have none."""
    from legal_assistant.runtime.kv_slots import slot_list, slot_view

    engine = state.supervisor.get(engine_id)
    if engine is None:
        raise LegalAssistantError("not_found", f"engine {engine_id[:40]!r}")
    slots: list[dict[str, Any]] = []
    if engine.kind == "llamacpp" and engine.state is EngineState.READY:
        async with httpx.AsyncClient(trust_env=False) as client:
            try:
                slots = slot_view(await slot_list(client, engine.base_url))
            except (httpx.HTTPError, ValueError) as e:
                raise LegalAssistantError("upstream_error", f"/slots: {e!r}") from e
    return {"engine": engine.id, "model": engine.ref.id, "slots": slots}


@router.post("/api/engines/{engine_id}/stop", dependencies=[Admin])
async def stop_engine(engine_id: str, state: State) -> dict[str, Any]:
    engine = await state.supervisor.stop_engine(engine_id)
    if engine is None:
        raise LegalAssistantError("not_found", f"engine {engine_id[:40]!r}")
    return engine.status()


async def start_events(
    supervisor: Supervisor, model_id: str, language: Language
) -> AsyncIterator[ChatEvent]:
    """Status events while an engine starts, then `done` (its status) or `error`."""
    fmt = StatusFormatter(language, time.time())
    engine: Engine | None = None
    try:
        events = supervisor.acquire_events(parse_model_id(model_id))
        async with contextlib.aclosing(events):
            async for item in events:
                if isinstance(item, Lease):
                    item.release()  # started for later requests: nothing to hold here
                    engine = item.engine
                elif item is not None and (payload := fmt(item)) is not None:
                    yield ChatEvent("status", payload)
    except LegalAssistantError as err:
        yield ChatEvent("error", err.to_dict(language))
        return
    assert engine is not None
    yield ChatEvent("done", engine.status())


@router.post("/api/engines/start", response_model=None, dependencies=[EngineStart])
async def start_engine(
    body: StartRequest, state: State, request: Request
) -> dict[str, Any] | EventSourceResponse | JSONResponse:
    ref = parse_model_id(body.model_id)
    if not ref.managed:
        raise LegalAssistantError("bad_request", f"{ref.provider} models are not supervised")
    if body.warm:
        # A model picked in the UI: warm it while the user types. A chat sent meanwhile
        # joins the start (single flight); /api/engines/events shows the phases.
        warmer: Warmer = request.app.state.warmer
        warmer.start(ref, body.language or request_language(request))
        engine = state.supervisor.engine_for(ref)
        return JSONResponse(
            {"model": ref.id, "warming": True, "engine": engine.status() if engine else None},
            status_code=202,
        )
    if "text/event-stream" in request.headers.get("accept", ""):
        return sse(start_events(state.supervisor, ref.id, request_language(request)))
    engine = await state.supervisor.ensure_ready(ref)
    return engine.status()
