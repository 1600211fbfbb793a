"""The claim checker: does each cited passage back the statement that cites it?

`ClaimChecker.check(answer, sources)` splits the answer into statements (statements.py),
and scores every (statement, cited passage) pair on two grounds:
- meaning: the cosine of the two texts' e5 embeddings (the bundled multilingual-e5-small,
  through the supervised embedding engine: `embed` is `Embedder.queries`), one batched
  request per check for every statement and passage involved;
- substance (substance.py): the numbers, article references and parties the statement
  names must be in the passage (a veto), and the share of its content words found there.

A citation is `supported` when nothing the statement names is missing from the passage and
the combined score reaches the calibrated threshold. A statement is `supported` when one
of its citations is, `unsupported` when it cites and none is (a number that is not among
`sources` is unsupported), `uncited` when it claims something without a citation, and
`not_a_claim` for greetings, transitions, questions and "I could not find..." sentences.

Without embeddings (`embed=None`: a CLI or a test with no engine) only substance is used,
with its own threshold; it is less accurate (it cannot see a faithful paraphrase in other
words, nor a statement in another language than its passage): docs/claims.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from legal_assistant.claims.model import CitationCheck, Claim, Verdict
from legal_assistant.claims.statements import Marker, Statement, split_statements
from legal_assistant.claims.substance import Comparison, Substance, compare

Embed = Callable[[Sequence[str]], Awaitable[npt.NDArray[np.float32]]]

# Calibrated on the dev half of benchmarks/data/claims/pairs.jsonl (built by
# benchmarks/claims_set.py from the Code civil and Cour de cassation decisions of
# ../shared/corpus): `benchmarks/claims.py --tune` picks the best dev recall at dev
# precision >= 0.95 (dev 0.950 / 0.957; held-out, only reported: 0.941 / 0.956;
# docs/benchmarks.md#claim-checking).
#
# e5 cosines cluster high (0.75-0.95 for any two legal sentences): meaning is the cosine
# rescaled from [MEANING_FLOOR, MEANING_CEIL] to [0, 1].
MEANING_FLOOR = 0.78
MEANING_CEIL = 0.94
# The score is MEANING_WEIGHT * meaning + (1 - MEANING_WEIGHT) * coverage (the share of
# the statement's content words found in the passage).
MEANING_WEIGHT = 0.3
SUPPORT_THRESHOLD = 0.61
# A near-identical meaning is enough even with few shared words.
MEANING_ALONE = 0.96
# Substance only (no embedding engine): the share of content words found.
COVERAGE_ONLY_THRESHOLD = 0.75
# A statement in another language than its passage (an English answer on French
# documents): no shared words, so meaning alone decides, at this cosine.
CROSS_LANGUAGE = 0.87

# Reasons a citation is unsupported (CitationCheck.reason).
Reason = str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The calibrated constants above, as one value (benchmarks/claims.py tunes a copy)."""

    meaning_floor: float = MEANING_FLOOR
    meaning_ceil: float = MEANING_CEIL
    meaning_weight: float = MEANING_WEIGHT
    support: float = SUPPORT_THRESHOLD
    meaning_alone: float = MEANING_ALONE
    coverage_only: float = COVERAGE_ONLY_THRESHOLD
    cross_language: float = CROSS_LANGUAGE


CALIBRATED = Thresholds()


@dataclass(frozen=True, slots=True)
class Support:
    """How well one passage backs one statement."""

    supported: bool
    score: float  # 0..1, what `supported` was decided on (with the substance veto)
    cosine: float | None  # None without embeddings, or when meaning was not needed
    coverage: float
    reason: Reason | None  # why not supported: "number", "article", "party", "meaning"

    def citation(self, n: int) -> CitationCheck:
        return CitationCheck(
            n=n,
            verdict="supported" if self.supported else "unsupported",
            score=self.score,
            reason=self.reason,
        )


def judge(
    statement: Substance,
    passage: Substance,
    cosine: float | None,
    thresholds: Thresholds = CALIBRATED,
) -> Support:
    """The verdict on one pair, from its substance and (when known) its cosine."""
    return decide(compare(statement, passage), cosine, thresholds)


def decide(comparison: Comparison, cosine: float | None, t: Thresholds = CALIBRATED) -> Support:
    """The verdict from a substance comparison and a cosine (None: substance only)."""
    coverage = comparison.coverage
    if cosine is None:
        score = coverage
        enough = score >= t.coverage_only
    elif comparison.cross_language:
        score = _rescaled(cosine, t)
        enough = cosine >= t.cross_language
    else:
        score = t.meaning_weight * _rescaled(cosine, t) + (1 - t.meaning_weight) * coverage
        enough = score >= t.support or cosine >= t.meaning_alone
    if comparison.missing is not None:
        return Support(False, score, cosine, coverage, comparison.missing)
    return Support(enough, score, cosine, coverage, None if enough else "meaning")


def words_decide(comparison: Comparison, t: Thresholds = CALIBRATED) -> Support | None:
    """The verdict when it does not depend on meaning, else None: substance vetoed the
    pair, or (same language) the shared words alone reach the threshold — meaning counted
    as 0, so `score` is a lower bound. Such pairs are not embedded."""
    if comparison.missing is not None:
        return decide(comparison, None, t)
    floor = (1 - t.meaning_weight) * comparison.coverage
    if not comparison.cross_language and floor >= t.support:
        return Support(True, floor, None, comparison.coverage, None)
    return None


def _rescaled(cosine: float, t: Thresholds) -> float:
    return min(1.0, max(0.0, (cosine - t.meaning_floor) / (t.meaning_ceil - t.meaning_floor)))


class ClaimChecker:
    """Checks answers against the passages they cite. Stateless between calls; one per
    app is enough (it holds only the `embed` function)."""

    def __init__(self, embed: Embed | None = None) -> None:
        self._embed = embed

    @property
    def uses_embeddings(self) -> bool:
        return self._embed is not None

    async def check(
        self, answer: str, sources: Mapping[int, str], *, marker: Marker = "n"
    ) -> list[Claim]:
        """The statements of `answer` in order, each with its verdict and, for each number
        it cites, whether `sources[n]` backs it."""
        statements = split_statements(answer, marker)
        cited = {(s.claim_text, sources[n]) for s in statements if s.is_claim
                 for n in s.citations if n in sources}  # fmt: skip
        substance = {t: Substance.of(t) for pair in cited for t in pair}
        comparisons = {(a, b): compare(substance[a], substance[b]) for a, b in cited}
        # Pairs whose verdict does not depend on meaning (substance vetoed them, or their
        # shared words alone suffice) are not embedded: only the others are.
        decided = {p: v for p, c in comparisons.items() if (v := self._without_meaning(c))}
        open_pairs = [pair for pair in comparisons if pair not in decided]
        vectors = await self._vectors(sorted({t for pair in open_pairs for t in pair}))
        claims = []
        for statement in statements:
            checks = []
            for n in statement.citations if statement.is_claim else ():
                if n not in sources:
                    checks.append(CitationCheck(n, "unsupported", 0.0, reason="unknown_source"))
                    continue
                pair = (statement.claim_text, sources[n])
                support = decided.get(pair) or decide(comparisons[pair], _cosine(vectors, *pair))
                checks.append(support.citation(n))
            claims.append(_claim(statement, tuple(checks)))
        return claims

    async def support(self, statement: str, passage: str) -> Support:
        """How well `passage` backs the one statement `statement` (its markers ignored)."""
        comparison = compare(Substance.of(statement), Substance.of(passage))
        if (known := self._without_meaning(comparison)) is not None:
            return known
        vectors = await self._vectors([statement, passage])
        return decide(comparison, _cosine(vectors, statement, passage))

    def _without_meaning(self, comparison: Comparison) -> Support | None:
        # Without an engine every pair is judged on substance alone (decide, cosine None).
        return words_decide(comparison) if self._embed is not None else None

    async def _vectors(self, texts: list[str]) -> dict[str, npt.NDArray[np.float32]] | None:
        if self._embed is None or not texts:
            return None
        matrix = await self._embed(texts)
        return {t: matrix[i] for i, t in enumerate(texts)}


def _cosine(
    vectors: dict[str, npt.NDArray[np.float32]] | None, statement: str, passage: str
) -> float | None:
    if vectors is None or statement not in vectors:
        return None  # no engine, or a pair vetoed on substance (not embedded)
    # The engine's vectors are L2-normalised: the dot product is the cosine.
    return float(np.dot(vectors[statement], vectors[passage]))


def _claim(statement: Statement, checks: tuple[CitationCheck, ...]) -> Claim:
    verdict: Verdict
    if not statement.is_claim:
        verdict = "not_a_claim"
    elif not statement.citations:
        verdict = "uncited"
    elif any(c.verdict == "supported" for c in checks):
        verdict = "supported"
    else:
        verdict = "unsupported"
    return Claim(statement.text, statement.start, statement.end, checks, verdict)
