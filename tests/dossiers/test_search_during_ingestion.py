"""Searching while a document is being ingested, as a user would: the real app, the real
embedding engine, the real extraction worker, real PDFs of the Code civil. Searches sent
one by one and twenty at once during the ingestion find exactly what they found before
it (the new document is not searchable until complete), and the new document's content
once it is ready. Order, not speed: the timings are in benchmarks/search_load.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dossier_builders import article, articles, build_pdf
from dossier_helpers import create_dossier, follow, upload

from app_harness import RunningApp

QUESTIONS = [
    "Quelle est la responsabilité de celui qui cause un dommage à autrui ?",
    "Le propriétaire peut-il jouir de sa chose ?",
    "Who is liable for damage caused by negligence?",
    "vices cachés de la chose vendue",
]


async def search(app: RunningApp, dossier_id: str, q: str) -> list[str]:
    found: dict[str, Any] = await app.get(
        f"/api/dossiers/{dossier_id}/search", params={"q": q, "k": 5}
    )
    return [r["passage_id"] for r in found["results"]]


async def test_search_during_an_ingestion_finds_what_it_found_before(
    app: RunningApp, tmp_path: Path
) -> None:
    dossier = (await create_dossier(app))["id"]
    small = build_pdf(
        tmp_path / "extraits.pdf",
        [[(n, article(n))] for n in ("1240", "1241", "544", "1641", "1648")],
    )
    # 24 pages of lease articles: several seconds of embedding, far more than the searches.
    leases = articles("livre-iii/titre-viii", limit=72)
    large = build_pdf(tmp_path / "baux.pdf", [leases[i : i + 3] for i in range(0, 72, 3)])
    async with follow(app, dossier) as log:
        first = (await upload(app.client, dossier, small)).json()["documents"][0]["id"]
        await log.wait_for(lambda: log.finished(first))
        before = {q: await search(app, dossier, q) for q in QUESTIONS}
        assert before[QUESTIONS[0]][0].startswith(first)  # Article 1240

        second = (await upload(app.client, dossier, large)).json()["documents"][0]["id"]
        await log.wait_for(lambda: "embedding" in log.statuses(second))
        one_by_one = {q: await search(app, dossier, q) for q in QUESTIONS}
        together = await asyncio.gather(*(search(app, dossier, q) for q in QUESTIONS * 5))
        during = log.statuses(second)[-1]
        await log.wait_for(lambda: log.finished(second))

    assert during == "embedding", log.of(second)  # the searches ran during the ingestion
    assert log.statuses(second)[-1] == "ready"
    assert one_by_one == before
    assert together == [before[q] for q in QUESTIONS * 5]
    after = await search(app, dossier, "Le bailleur est obligé de délivrer la chose louée")
    assert after and after[0].startswith(second)
