"""`POST /v1/embeddings`: the supervised embedding engine (embed_serve.py) for any OpenAI
client, in OpenAI's request and response shape.

The engine is leased for the request (started on first use, never unloaded under it).
The body is rebuilt from validated fields, never forwarded as is, and the engine's
answer names our model id. One extension: `input_type` ("query" | "passage", e5's
prefixes, applied by the engine). Without it the text is embedded as a query, e5's advice
for symmetric similarity (OpenAI clients send no such field).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from legal_assistant.accounts.policy import check_model
from legal_assistant.accounts.principal import principal_of
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.api.routes.openai_gateway import openai_error
from legal_assistant.catalog import EMBEDDING_PROVIDERS, parse_model_id
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.embed import EMBED_DIMENSION

router = APIRouter(dependencies=[ApiKey])

MAX_INPUTS = 2048  # OpenAI's own bound on one request's array
MAX_INPUT_CHARS = 200_000  # one text (the engine windows long texts: ~40 windows)
MAX_TOTAL_CHARS = 2_000_000
MAX_BODY_BYTES = 16 * 1024 * 1024


def _bad(detail: str, param: str | None = None) -> LegalAssistantError:
    return LegalAssistantError(
        "bad_request",
        detail,
        message_fr=f"❌ Requête d'embeddings invalide : {detail}.",
        message_en=f"❌ Invalid embeddings request: {detail}.",
    )


def parse_request(raw: bytes) -> dict[str, Any]:
    """The validated request: model ref, texts, input_type, encoding_format."""
    if len(raw) > MAX_BODY_BYTES:
        raise _bad(f"body larger than {MAX_BODY_BYTES // 2**20} MB")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise _bad("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str):
        raise _bad("'model' is required (embed:multilingual-e5-small)")
    ref = parse_model_id(model)
    if ref.provider not in EMBEDDING_PROVIDERS:
        raise LegalAssistantError(
            "bad_request",
            f"{ref.id} is not an embedding model",
            message_fr=f"❌ {ref.id[:80]} n'est pas un modèle d'embeddings "
            "(embed:multilingual-e5-small).",
            message_en=f"❌ {ref.id[:80]} is not an embedding model (embed:multilingual-e5-small).",
        )
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts:
        raise _bad("'input' must be a non-empty string or array of strings")
    if not all(isinstance(t, str) for t in texts):
        raise _bad("'input' must contain strings (token arrays are not supported)")
    if len(texts) > MAX_INPUTS:
        raise _bad(f"more than {MAX_INPUTS} inputs")
    if any(not t.strip() for t in texts):
        raise _bad("'input' contains an empty string")
    if any(len(t) > MAX_INPUT_CHARS for t in texts) or sum(map(len, texts)) > MAX_TOTAL_CHARS:
        raise _bad(f"inputs over {MAX_INPUT_CHARS} characters (or {MAX_TOTAL_CHARS} in all)")
    input_type = body.get("input_type", "query")
    if input_type == "document":
        input_type = "passage"
    if input_type not in ("query", "passage"):
        raise _bad("'input_type' must be 'query' or 'passage'")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise _bad("'encoding_format' must be 'float' or 'base64'")
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != EMBED_DIMENSION:
        raise _bad(f"this model has {EMBED_DIMENSION} dimensions")
    return {"ref": ref, "input": texts, "input_type": input_type, "encoding_format": encoding}


@router.post("/v1/embeddings", response_model=None)
async def embeddings(request: Request, state: State) -> Response:
    t0 = time.perf_counter()
    status = 200
    try:
        req = parse_request(await request.body())
        ref, user = req["ref"], principal_of(request).user_id
        check_model(principal_of(request), ref.id)  # a key's model allowlist
        async with state.admission.slot(ref.id, user), state.supervisor.lease(ref) as lease:
            engine = lease.engine
            try:
                upstream = await state.gateway_http.post(
                    f"{engine.base_url}/v1/embeddings",
                    json={
                        "model": engine.served_model,
                        "input": req["input"],
                        "input_type": req["input_type"],
                        "encoding_format": req["encoding_format"],
                    },
                )
            except httpx.HTTPError as e:
                raise LegalAssistantError("engine_crashed", f"embedding engine: {e!r}") from e
        if upstream.status_code != 200:
            raise LegalAssistantError(
                "upstream_error", f"HTTP {upstream.status_code}: {upstream.text[:300]}"
            )
        data = upstream.json()
        data["model"] = ref.id
        return JSONResponse(data)
    except LegalAssistantError as err:
        response = openai_error(err)
        status = response.status_code
        return response
    finally:
        state.metrics.gateway_latency.labels("embeddings", str(status)).observe(
            time.perf_counter() - t0
        )
