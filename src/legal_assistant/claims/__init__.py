"""Claim-level citation checking: does each cited passage back the sentence citing it?

`ClaimChecker` (checker.py) over statements.py (answer -> statements) and substance.py
(numbers, articles, parties, content words); the shapes are in model.py. docs/claims.md.
"""

from legal_assistant.claims.checker import ClaimChecker, Support
from legal_assistant.claims.model import CitationCheck, Claim, Verdict

__all__ = ["CitationCheck", "Claim", "ClaimChecker", "Support", "Verdict"]
