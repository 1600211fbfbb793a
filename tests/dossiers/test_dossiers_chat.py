"""Grounded chat: a turn in a dossier retrieves its passages, sends `sources` before the
first token, numbers them in the prompt, verifies the answer's citations and saves both
with the message. The real bundled MLX model answers the main test; the tiny model may
not cite, so citation verification is also checked on a controlled answer (a stand-in
OpenAI-compatible endpoint that answers a fixed text citing [1], [2] and [9]) and on
plain strings."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from dossier_builders import article, build_docx, planted_pdf
from dossier_helpers import create_dossier, upload, wait_documents
from fastapi import FastAPI, Request
from sse_starlette.sse import EventSourceResponse

from app_harness import RunningApp, free_port, make_settings, serve_app, wait_until
from legal_assistant.chat.grounding import verify_citations
from legal_assistant.chat.prompts import NO_PASSAGE
from legal_assistant.config import OpenAIEndpoint

QUESTION = "Que doit faire celui par la faute duquel un dommage est causé à autrui ?"


async def _dossier_with_tort_pdf(app: RunningApp, tmp_path: Path) -> tuple[str, str]:
    dossier = await create_dossier(app)
    pdf = planted_pdf(tmp_path / "responsabilite.pdf", "1382", page=2, pages=3)
    doc = (await upload(app.client, dossier["id"], pdf)).json()["documents"][0]
    await wait_documents(app, dossier["id"])
    return dossier["id"], doc["id"]


def test_verify_citations_keeps_only_sent_numbers() -> None:
    assert verify_citations("Selon [1], puis [3] et [2].", 3) == [1, 3, 2]
    assert verify_citations("[1][1] [ 2 ] [1, 2; 3]", 3) == [1, 2, 3]
    assert verify_citations("voir [2-4] et [1–2]", 5) == [2, 3, 4, 1]
    assert verify_citations("[0] [4] [12] [99]", 3) == []
    assert verify_citations("[1-400]", 3) == []  # an absurd range is not a citation
    assert verify_citations("article [L121-21]? [a] [] [1.5]", 3) == []
    assert verify_citations("no citation at all", 3) == []
    assert verify_citations("[1]", 0) == []


async def test_grounded_turn_on_the_bundled_model(
    app: RunningApp, tmp_path: Path, bundled_model: Path
) -> None:
    dossier_id, doc_id = await _dossier_with_tort_pdf(app, tmp_path)
    turn = await app.chat(message=QUESTION, dossier_id=dossier_id, max_tokens=48)
    assert turn.status_code == 200, turn.body
    names = turn.names
    assert names[0] == "meta" and "sources" in names and "token" in names, names
    assert names.index("sources") < names.index("token")
    assert names[-1] == "done", turn.events
    sources = turn.one("sources")["sources"]
    assert sources and sources[0]["n"] == 1
    assert sources[0]["document_id"] == doc_id and sources[0]["page"] == 2
    assert sources[0]["filename"] == "responsabilite.pdf"
    assert "dommage" in sources[0]["text"]
    done = turn.one("done")
    citations, claims = done["citations"], done["claims"]
    # The bundled model may loop within 48 tokens: the answer is then the text before the
    # loop (docs/answers.md), and the claims are those of that text.
    text = turn.text[: done["kept_chars"]].rstrip() if "kept_chars" in done else turn.text
    assert isinstance(citations, list) and claims, done
    for claim in claims:
        assert text[claim["char_start"] : claim["char_end"]] == claim["text"]
    # Verified = cited, sent, and backing at least one statement (legal_assistant.claims).
    backing = [
        c["n"] for claim in claims for c in claim["citations"] if c["verdict"] == "supported"
    ]
    assert citations == list(dict.fromkeys(backing))
    assert set(citations) <= set(verify_citations(text, len(sources)))

    conversation = await app.conversation(turn.conversation_id)
    assert conversation["dossier_id"] == dossier_id
    answer = conversation["messages"][-1]
    assert answer["role"] == "assistant" and answer["content"] == text
    assert answer["sources"] == sources and answer["citations"] == citations
    assert answer["claims"] == claims
    assert conversation["messages"][0]["sources"] is None  # the question carries none
    listed = await app.get(f"/api/dossiers/{dossier_id}/conversations")
    assert [c["id"] for c in listed["conversations"]] == [turn.conversation_id]

    # The next turn of that conversation is grounded too, without naming the dossier.
    follow_up = await app.chat(
        message="Et qui doit réparer ?", conversation_id=turn.conversation_id, max_tokens=8
    )
    assert "sources" in follow_up.names and follow_up.names[-1] == "done"


async def test_nothing_relevant_says_so_without_calling_a_model(
    app: RunningApp, tmp_path: Path
) -> None:
    dossier = await create_dossier(app)
    docx = build_docx(tmp_path / "propriete.docx", [("544", article("544"))])
    await upload(app.client, dossier["id"], docx)
    await wait_documents(app, dossier["id"])
    for language in ("fr", "en"):
        turn = await app.chat(
            message="Quelle est la recette de la tarte tatin aux pommes caramélisées ?",
            dossier_id=dossier["id"],
            language=language,
        )
        assert turn.names[:2] == ["meta", "sources"], turn.names
        assert turn.one("sources")["sources"] == []
        assert turn.text == NO_PASSAGE[language]
        assert turn.one("done")["citations"] == []
        claims = turn.one("done")["claims"]
        assert claims and {c["verdict"] for c in claims} == {"not_a_claim"}, claims
    assert not [e for e in await app.engines() if e["model"].startswith("mlx:")]
    saved = (await app.conversation(turn.conversation_id))["messages"][-1]
    assert saved["sources"] == [] and saved["citations"] == [] and not saved["partial"]


async def test_refusals_before_anything_is_saved(app: RunningApp) -> None:
    turn = await app.chat(message="Bonjour", dossier_id="0" * 32)
    assert turn.status_code == 404 and turn.body is not None
    assert turn.body["error"]["code"] == "not_found"
    turn = await app.chat(message="Bonjour", dossier_id="../x")
    assert turn.status_code == 404
    assert await app.get("/api/conversations") == []
    one = await create_dossier(app, "Un")
    two = await create_dossier(app, "Deux")
    first = await app.chat(message="Bonjour ?", dossier_id=one["id"])
    assert first.names[-1] == "done"
    other = await app.chat(
        message="Et ici ?", dossier_id=two["id"], conversation_id=first.conversation_id
    )
    assert other.status_code == 400


# ----------------------------------------------------------------------------- stand-in
@contextlib.asynccontextmanager
async def citing_endpoint(answer: str) -> AsyncIterator[tuple[str, list[Any]]]:
    """Stand-in for a model that cites: an OpenAI-compatible server streaming `answer`
    (and recording the messages it was sent)."""
    seen: list[Any] = []
    api = FastAPI()

    @api.post("/v1/chat/completions")
    async def completions(request: Request) -> EventSourceResponse:
        body = await request.json()
        seen.append(body["messages"])

        async def chunks() -> AsyncIterator[str]:
            for word in answer.split(" "):
                delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                yield json.dumps(delta)
            yield "[DONE]"

        return EventSourceResponse(chunks())

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 30, "the stand-in endpoint is up")
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_citations_are_verified_against_what_was_sent(
    tmp_path: Path, models_dir: Path, language: str
) -> None:
    answer = "Il doit réparer le dommage [1]. Voir aussi [1, 2] et [9]."
    async with citing_endpoint(answer) as (base_url, seen):
        endpoint = OpenAIEndpoint(name="citing", base_url=base_url, models=["citing-model"])
        settings = make_settings(tmp_path, models_dir, openai_endpoints=[endpoint])
        async with serve_app(settings) as app:
            dossier_id, _ = await _dossier_with_tort_pdf(app, tmp_path)
            turn = await app.chat(
                message=QUESTION,
                dossier_id=dossier_id,
                model_id="openai:citing-model",
                language=language,
            )
            sources = turn.one("sources")["sources"]
            assert sources, turn.events
            # "[1, 2]" and "[9]" cite no statement a passage backs ("Voir aussi"); "[9]"
            # was not even sent: only [1] is verified (legal_assistant.claims).
            expected = [1]
            assert turn.one("done")["citations"] == expected
            saved = (await app.conversation(turn.conversation_id))["messages"][-1]
            assert saved["citations"] == expected and saved["sources"] == sources
    messages = seen[0]
    assert messages[0]["role"] == "system"
    assert ("[1]" in messages[0]["content"]) and (
        "uniquement" in messages[0]["content"]
        if language == "fr"
        else "only" in messages[0]["content"]
    )
    prompt = messages[-1]["content"]
    assert prompt.startswith("Extraits du dossier" if language == "fr" else "Excerpts")
    assert "[1] (responsabilite.pdf, p. 2" in prompt
    assert prompt.rstrip().endswith(QUESTION)
