"""Crash-loop backoff of one engine: an engine that dies at every start is not respawned
on every request. Owned by the engine; written by its runner only."""

from __future__ import annotations

import time

from legal_assistant.errors import LegalAssistantError

_BACKOFF_MAX_S = 60.0
# A crash within this long after READY counts as a failed start: an engine that dies on
# its first real request must not be respawned on every request.
STABLE_AFTER_S = 60.0


class CrashLoop:
    def __init__(self) -> None:
        self.failed_starts = 0  # consecutive, as shown to users
        self.retry_at = 0.0  # monotonic: no start before this
        self._before_ready = 0  # the count kept while the engine is on probation

    def failed_start(self, *, spawned: bool) -> None:
        """After the second failure in a row, starts wait 1, 2, 4 ... up to 60 s. A start
        refused before any process was spawned (its fixed port held, its command missing)
        costs nothing to retry and does not count."""
        if not spawned:
            return
        self.failed_starts += 1
        if self.failed_starts >= 2:
            delay = min(_BACKOFF_MAX_S, 2.0 ** (self.failed_starts - 2))
            self.retry_at = time.monotonic() + delay

    def ready(self) -> None:
        """READY: the count shows 0, but the engine is on probation."""
        self._before_ready, self.failed_starts, self.retry_at = self.failed_starts, 0, 0.0

    def crashed_when_ready(self, ready_at: float | None) -> None:
        """A crash soon after READY resumes the count; after a stable run it is a first
        failure (no backoff)."""
        stable = ready_at is not None and time.monotonic() - ready_at >= STABLE_AFTER_S
        self.failed_starts = 0 if stable else self._before_ready
        self.failed_start(spawned=True)

    def reset(self) -> None:
        """A deliberate, clean stop."""
        self.failed_starts, self.retry_at, self._before_ready = 0, 0.0, 0

    def retry_in(self) -> float:
        return max(0.0, self.retry_at - time.monotonic())

    def error(self, last: LegalAssistantError | None) -> LegalAssistantError | None:
        """The error to answer with while the backoff holds (given the last one)."""
        wait = self.retry_in()
        if wait <= 0 or last is None:
            return None
        return LegalAssistantError(
            last.code,
            f"{last.detail} — {self.failed_starts} failed starts in a row; "
            f"next attempt allowed in {wait:.0f}s",
            message_fr=last.message_fr,
            message_en=last.message_en,
            log_tail=last.log_tail,
        )
