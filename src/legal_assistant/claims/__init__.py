"""Claim-level citation checking (see model.py for the shapes)."""
