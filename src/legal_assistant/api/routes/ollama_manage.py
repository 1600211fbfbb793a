"""Ollama model management under `/ollama`: `/api/pull` downloads through the backend's
own downloader (resumable, stall deadline, the Hugging Face cache the engines use) and
reports Ollama's progress lines (`pulling manifest`, `pulling <digest>` with `total` and
`completed` bytes, `verifying sha256 digest`, `writing manifest`, `success`);
`/api/delete`, `/api/create`, `/api/copy` and `/api/push` answer a clear 501.

Included after `ollama_api` (its routes take precedence over the `/api/{action}` one here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from legal_assistant.accounts.policy import Admin
from legal_assistant.api.deps import State, require_api_key
from legal_assistant.api.relay import CleanupStream
from legal_assistant.api.routes.ollama_api import (
    NDJSON,
    error_line,
    not_found,
    ollama_error,
    read_body,
)
from legal_assistant.api.state import AppState
from legal_assistant.catalog import ModelRef, parse_model_id, parse_ollama_name
from legal_assistant.errors import LegalAssistantError
from legal_assistant.gateway import ollama as tr
from legal_assistant.runtime.downloads import DownloadProgress, download_snapshot

# Ollama's protocol, not ours. Pulling (and removing) models is engine management: admins.
router = APIRouter(prefix="/ollama", include_in_schema=False, dependencies=[Admin])


@router.post("/api/pull", response_model=None)
async def pull(request: Request, state: State) -> Response:
    try:
        body = await read_body(request)
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name:
            raise tr.invalid("model: the model to pull is required")
        ref = parse_ollama_name(name) or parse_model_id(name)
        if not ref.managed:
            raise LegalAssistantError(
                "bad_request",
                f"{ref.id}: only the backend's own models (mlx:, llamacpp:, vllm:) are pulled here",
                http_status=501,
            )
    except LegalAssistantError as err:
        return ollama_error(err)
    progress: asyncio.Queue[DownloadProgress] = asyncio.Queue()
    task = asyncio.create_task(_fetch(state, ref, progress.put_nowait))
    if not body.get("stream", True):
        try:
            await task
        except LegalAssistantError as err:
            return ollama_error(err)
        return JSONResponse({"status": "success"})

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task

    return CleanupStream(
        _pull_lines(ref, task, progress),
        cancel,
        send_timeout=state.settings.stream_send_timeout_s,
        media_type=NDJSON,
    )


async def _fetch(
    state: AppState, ref: ModelRef, report: Callable[[DownloadProgress], None]
) -> None:
    """A Hub repo through the backend's downloader (resumable, stall deadline); any other
    model through its engine's own resolution (the bundled model's conversion, a path)."""
    if ref.kind == "repo" and ref.provider == "mlx":
        await download_snapshot(
            ref.name,
            hf_home=state.settings.resolved_hf_home,
            progress=report,
            stall_timeout_s=state.settings.download_stall_timeout_s,
        )
        return
    spec = state.supervisor.specs.get(ref.provider)
    if spec is None:
        raise not_found(ref.id)
    await spec.resolve_model(ref, state.settings, lambda *_: None)


async def _pull_lines(
    ref: ModelRef, task: asyncio.Task[None], progress: asyncio.Queue[DownloadProgress]
) -> AsyncIterator[bytes]:
    def line(data: dict[str, Any]) -> bytes:
        return json.dumps(data).encode() + b"\n"

    yield line({"status": "pulling manifest"})
    layer = f"sha256:{tr.digest(ref.id)}"
    while not task.done() or not progress.empty():
        getter = asyncio.ensure_future(progress.get())
        done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            continue
        p = getter.result()
        if p.total_bytes:
            yield line(
                {
                    "status": f"pulling {layer[7:19]}",
                    "digest": layer,
                    "total": p.total_bytes,
                    "completed": min(p.done_bytes, p.total_bytes),
                }
            )
    try:
        task.result()
    except LegalAssistantError as err:
        yield error_line(err)
        return
    for status in ("verifying sha256 digest", "writing manifest", "success"):
        yield line({"status": status})


@router.api_route("/api/{action}", methods=["POST", "DELETE"], response_model=None)
async def not_here(action: str, request: Request) -> Response:
    """Model management the backend does not do through this API: a clear 501."""
    try:
        require_api_key(request)
    except LegalAssistantError as err:
        return ollama_error(err)
    what = {
        "delete": "delete models (remove them from the Hugging Face cache or the models folder)",
        "create": "create models from a Modelfile",
        "copy": "copy models",
        "push": "push models",
    }.get(action)
    if what is None:
        return JSONResponse({"error": f"unknown endpoint /api/{action[:40]}"}, status_code=404)
    return JSONResponse({"error": f"this backend does not {what}"}, status_code=501)
