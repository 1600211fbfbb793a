"""The answer of a chat turn as it streams: its text, timings and usage, how it ended (a
loop cut by the degeneration watcher, `max_tokens`), and how it is saved (whole, or
flagged partial with the error that cut it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from legal_assistant.catalog import ModelRef
from legal_assistant.chat.degeneration import LoopWatcher
from legal_assistant.chat.extract import extractive_answer
from legal_assistant.chat.grounding import Grounding, supporting
from legal_assistant.claims import Claim
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.providers import Usage
from legal_assistant.store import Database, DatabaseError, add_message


@dataclass(slots=True)
class Answer:
    conversation_id: str
    ref: ModelRef
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    engine_port: int | None = None
    started: bool = False
    wait_s: float = 0.0
    sent_at: float | None = None
    first_token_at: float | None = None
    error: LegalAssistantError | None = None
    cancelled: bool = False
    persisted_id: str | None = None
    grounding: Grounding | None = None
    watcher: LoopWatcher = field(default_factory=LoopWatcher)
    deltas: int = 0  # text deltas received (≈ tokens), counted before any trim
    finish_reason: str | None = None  # as the engine reported it ("stop", "length")
    stopped: str | None = None  # "repetition" | "max_tokens", set by `settle`
    claims: list[Claim] | None = None  # a grounded answer's checked statements
    extract: dict[str, Any] | None = None  # {"text", "sources"}: see `extractive`

    async def check_claims(self) -> None:
        """Check a grounded answer's statements against the passages they cite."""
        if self.grounding is not None:
            # The text exactly as saved (persist drops NUL): the offsets point into it.
            self.claims = await self.grounding.check("".join(self.parts).replace("\x00", ""))

    def citations(self) -> list[int] | None:
        """Verified citation numbers of a grounded answer (None for an ordinary one): those
        that support at least one statement once the claims are checked; before (a partial
        answer), those that were among the passages sent."""
        if self.grounding is None:
            return None
        if self.claims is not None:
            return supporting(self.claims)
        return self.grounding.citations("".join(self.parts))

    def claims_dicts(self) -> list[dict[str, Any]] | None:
        return [c.to_dict() for c in self.claims] if self.claims is not None else None

    def add(self, content: str) -> bool:
        """Take a delta; True when the text has started looping (stop reading the
        engine: closing its stream frees the engine's slot at once)."""
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self.parts.append(content)
        self.deltas += 1
        return self.watcher.feed(content) is not None

    def settle(self) -> None:
        """The stream ended (or was cut): drop a looping tail, say why it stopped."""
        if self.watcher.found is not None:
            self.parts = [self.watcher.kept_text()]
            self.stopped = "repetition"
        elif self.finish_reason == "length":
            self.stopped = "max_tokens"

    def extractive(self, question: str, language: Language) -> dict[str, Any] | None:
        """A grounded answer that ended with no supported citation (the model ignored the
        passages, looped, or is too small) gets the best passages quoted after it
        (chat/extract.py); None otherwise — and for a turn with no relevant passage,
        which already said so without calling the model."""
        if self.grounding is None or not self.grounding.relevant or self.citations():
            return None
        self.extract = extractive_answer(self.grounding.sources, question, language)
        return self.extract

    def ending(self, language: Language) -> dict[str, object]:
        """The `done` fields saying how the answer ended (none for a natural end)."""
        data: dict[str, object] = {"fallback": "extractive"} if self.extract else {}
        if self.stopped is None:
            return data
        data |= {
            "stopped": self.stopped,
            "notice": STOP_NOTICES[self.stopped][language],
        }
        if self.stopped == "repetition":
            data["kept_chars"] = len(self.parts[0])
        return data

    def usage_dict(self) -> dict[str, int] | None:
        if self.usage is None:
            return None
        return {
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.total,
        }

    def timings(self, t0: float) -> dict[str, float | None]:
        now = time.monotonic()
        ttft = self.first_token_at - self.sent_at if self.first_token_at and self.sent_at else None
        gen = now - self.first_token_at if self.first_token_at else None
        tokens = self.usage.completion_tokens if self.usage else self.deltas
        return {
            "queue_s": round(0.0 if self.started else self.wait_s, 4),
            "start_s": round(self.wait_s if self.started else 0.0, 4),
            "ttft_s": round(ttft, 4) if ttft is not None else None,
            "total_s": round(now - t0, 4),
            "tokens_per_s": round(tokens / gen, 2) if gen and tokens > 1 else None,
        }

    async def persist(self, db: Database, t0: float) -> str | None:
        if self.persisted_id is not None:
            return self.persisted_id
        error_code = self.error.code if self.error else ("cancelled" if self.cancelled else None)
        if error_code == "cancelled" and not self.parts:
            return None  # the client left before any answer: nothing to keep
        try:
            msg = await add_message(
                db,
                conversation_id=self.conversation_id,
                role="assistant",
                content="".join(self.parts).replace("\x00", ""),  # the database refuses NUL
                model_id=self.ref.id,
                provider=self.ref.provider,
                engine_port=self.engine_port,
                partial=error_code is not None,
                error_code=error_code,
                timings=self.timings(t0),
                usage=self.usage_dict(),
                sources=self.grounding.sources if self.grounding else None,
                citations=self.citations(),
                stopped=self.stopped,
                claims=self.claims_dicts(),
                extract=self.extract,
                fallback="extractive" if self.extract else None,
            )
        except DatabaseError as exc:  # disk full...: a classified error, not a dropped stream
            raise exc.user_error() from exc
        self.persisted_id = msg.id
        return msg.id


# Shown under an answer that did not end by itself (the UI has the same texts, for saved
# messages).
STOP_NOTICES: dict[str, dict[Language, str]] = {
    "repetition": {
        "fr": "Réponse interrompue : le modèle se répétait.",
        "en": "Answer stopped: the model was repeating itself.",
    },
    "max_tokens": {
        "fr": "Réponse tronquée : la longueur maximale a été atteinte.",
        "en": "Answer cut short: the maximum length was reached.",
    },
}


def title_of(message: str) -> str:
    """A conversation's title: the first line of its first message, at most 80 characters."""
    first_line = message.strip().splitlines()[0]
    return first_line[:77] + "..." if len(first_line) > 80 else first_line
