"""Claim-level citation checking in grounded chat and `POST /api/dossiers/{id}/verify`:
the real app (real SurrealDB, real embedding engine, real DOCX of Code civil articles).

The model is a stand-in: a scripted OpenAI-compatible endpoint (configured through
`OPENAI_ENDPOINTS` like any remote one) that reads the excerpts it is sent and answers with
a right citation, a wrong one, a changed number, a citation of a passage never sent and an
uncited sentence — a real small model cites too rarely to test verdicts deterministically."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from dossier_builders import article, build_docx
from dossier_helpers import create_dossier, upload, wait_documents
from fastapi import FastAPI, Request
from sse_starlette.sse import EventSourceResponse

from app_harness import RunningApp, free_port, make_settings, serve_app, wait_until
from legal_assistant.config import OpenAIEndpoint

QUESTION = "Dans quel délai l'acquéreur doit-il agir contre le vendeur pour vices rédhibitoires ?"


def scripted_answer(messages: list[dict[str, str]]) -> str:
    """The answer, citing as [n] the excerpt the prompt numbered for article 1648."""
    prompt = messages[-1]["content"]
    found = re.search(r"\[(\d+)\] \([^)]*Article 1648\)", prompt)
    n = found.group(1) if found else "1"
    return (
        "Bonjour. L'action résultant des vices rédhibitoires doit être intentée par "
        f"l'acquéreur dans un délai de deux ans à compter de la découverte du vice [{n}]. "
        f"L'acquéreur doit agir dans un délai de cinq ans après la découverte du vice [{n}]. "
        f"Le mariage est prohibé entre tous les ascendants et descendants [{n}]. "
        "Le vendeur est tenu de la garantie à raison des défauts cachés. "
        "Voir aussi la jurisprudence [9]."
    )


@contextlib.asynccontextmanager
async def scripted_endpoint(
    answer: Callable[[list[dict[str, str]]], str],
) -> AsyncIterator[str]:
    """Stand-in for a remote model: streams `answer(messages)` word by word."""
    api = FastAPI()

    @api.post("/v1/chat/completions")
    async def completions(request: Request) -> EventSourceResponse:
        text = answer((await request.json())["messages"])

        async def chunks() -> AsyncIterator[str]:
            for word in text.split(" "):
                yield json.dumps({"choices": [{"index": 0, "delta": {"content": word + " "}}]})
            yield "[DONE]"

        return EventSourceResponse(chunks())

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 30, "the scripted endpoint is up")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await task


async def _dossier(app: RunningApp, tmp_path: Path, name: str, numbers: list[str]) -> str:
    dossier = await create_dossier(app, name)
    docx = build_docx(tmp_path / f"{name}.docx", [(n, article(n)) for n in numbers])
    await upload(app.client, dossier["id"], docx)
    await wait_documents(app, dossier["id"])
    return str(dossier["id"])


async def test_grounded_turn_claims_saved_and_kept_after_restart(
    tmp_path: Path, models_dir: Path
) -> None:
    async with scripted_endpoint(scripted_answer) as base_url:
        endpoint = OpenAIEndpoint(name="scripted", base_url=base_url, models=["scripted"])
        settings = make_settings(tmp_path, models_dir, openai_endpoints=[endpoint])
        async with serve_app(settings) as app:
            dossier_id = await _dossier(app, tmp_path, "vices", ["1641", "1648", "1649"])
            turn = await app.chat(
                message=QUESTION, dossier_id=dossier_id, model_id="openai:scripted"
            )
            sources = turn.one("sources")["sources"]
            n = next(s["n"] for s in sources if s["label"] == "Article 1648")
            done = turn.one("done")
            claims = done["claims"]
            for claim in claims:
                assert turn.text[claim["char_start"] : claim["char_end"]] == claim["text"]
            verdicts = [
                (c["verdict"], [(x["n"], x["verdict"], x["reason"]) for x in c["citations"]])
                for c in claims
            ]
            assert verdicts == [
                ("not_a_claim", []),
                ("supported", [(n, "supported", None)]),
                ("unsupported", [(n, "unsupported", "number")]),  # cinq ans, not deux
                ("unsupported", [(n, "unsupported", "meaning")]),  # not what 1648 says
                ("uncited", []),
                ("unsupported", [(9, "unsupported", "unknown_source")]),  # never sent
            ], claims
            assert done["citations"] == [n]  # verified = backs at least one statement
            await _verify_route(app, dossier_id, sources, tmp_path)
    # The backend is stopped and started again: the saved message keeps its claims.
    async with serve_app(make_settings(tmp_path, models_dir)) as app:
        saved = (await app.conversation(turn.conversation_id))["messages"][-1]
        assert saved["claims"] == claims and saved["citations"] == [n]


async def _verify_route(
    app: RunningApp, dossier_id: str, sources: list[dict[str, Any]], tmp_path: Path
) -> None:
    by_label = {s["label"]: s["passage_id"] for s in sources}
    url = f"/api/dossiers/{dossier_id}/verify"
    answer = (
        "Le délai pour agir est de deux ans à compter de la découverte du vice [1]. "
        "Il est de trois ans [1]. La garantie couvre les défauts cachés de la chose [2]."
    )
    body = {
        "answer": answer,
        "sources": [
            {"n": 1, "passage_id": by_label["Article 1648"]},
            {"n": 2, "passage_id": by_label["Article 1641"]},
        ],
    }
    resp = await app.client.post(url, json=body)
    assert resp.status_code == 200, resp.text
    claims = resp.json()["claims"]
    assert [c["verdict"] for c in claims] == ["supported", "unsupported", "supported"]
    assert claims[1]["citations"][0]["reason"] == "number"

    async def refused(payload: dict[str, Any], status: int, code: str, path: str = url) -> None:
        r = await app.client.post(path, json=payload)
        assert r.status_code == status, (payload.get("answer", "")[:40], r.text[:300])
        assert r.json()["error"]["code"] == code

    other = await _dossier(app, tmp_path, "autre", ["544"])
    foreign = (await app.get(f"/api/dossiers/{other}/search", params={"q": "propriété"}))[
        "results"
    ][0]["passage_id"]
    await refused({**body, "answer": "  \n "}, 400, "bad_request")
    await refused({**body, "answer": "x" * 1_000_000}, 400, "bad_request")
    many = [{"n": i, "passage_id": by_label["Article 1648"]} for i in range(1, 52)]
    await refused({**body, "sources": many}, 400, "bad_request")
    await refused({**body, "sources": [body["sources"][0]] * 2}, 400, "bad_request")
    await refused({**body, "sources": [{"n": 1, "passage_id": foreign}]}, 404, "not_found")
    await refused({**body, "sources": [{"n": 1, "passage_id": "nope:0"}]}, 404, "not_found")
    await refused({**body, "sources": [{"n": 1, "passage_id": "../x"}]}, 404, "not_found")
    await refused(body, 404, "not_found", path="/api/dossiers/" + "0" * 32 + "/verify")
    await refused({"sources": []}, 400, "bad_request")
