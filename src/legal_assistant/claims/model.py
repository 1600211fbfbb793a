"""Claim-level citation checking: the verdicts and the shapes every caller shares.

One checker (`legal_assistant.claims`) serves grounded chat (`done.claims`), the client
route `POST /api/dossiers/{id}/verify` and the fiche d'arrêt's generated statements. The
JSON shape (`to_dict`) is a contract (docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# supported: a cited passage backs the statement; unsupported: it cites, nothing cited
# backs it; uncited: a factual statement with no citation; not_a_claim: greetings,
# transitions, "I could not find..." sentences.
Verdict = Literal["supported", "unsupported", "uncited", "not_a_claim"]
CitationVerdict = Literal["supported", "unsupported"]


@dataclass(frozen=True, slots=True)
class CitationCheck:
    n: int  # the source number as cited ("[3]" -> 3; "[§ 4]" -> 4 for the fiche)
    verdict: CitationVerdict
    score: float  # the support score in [0, 1] the verdict was decided on
    # Why an unsupported citation is: "number" / "article" / "party" (named in the
    # statement, absent from the passage), "meaning" (score under the threshold),
    # "unknown_source" (no such passage was given). None when supported.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    char_start: int  # offsets into the checked answer: answer[char_start:char_end] == text
    char_end: int
    citations: tuple[CitationCheck, ...]
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "citations": [
                {"n": c.n, "verdict": c.verdict, "score": round(c.score, 4), "reason": c.reason}
                for c in self.citations
            ],
            "verdict": self.verdict,
        }
