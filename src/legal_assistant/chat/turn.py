"""What a chat turn is made of: the request (validated before any side effect), the events
it streams, and the turn once prepared (model resolved, history loaded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from legal_assistant.catalog import ModelRef
from legal_assistant.config import OpenAIEndpoint
from legal_assistant.errors import Language


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800") and NUL: Python accepts them, the database
    # does not, and a turn must not fail after the user's message was meant to be saved.
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("invalid Unicode text (unpaired surrogate)") from e
    return value


Text = Annotated[str, AfterValidator(_encodable)]


class HistoryItem(BaseModel):
    role: Literal["user", "assistant"]
    content: Text = Field(max_length=200_000)


class ChatRequest(BaseModel):
    message: Text
    model_id: str | None = None  # parse_model_id refuses control characters itself
    conversation_id: Text | None = None
    language: Language = "fr"
    history: list[HistoryItem] | None = None
    # strict: `true` or "5" are not numbers (the schema says so; lax mode would coerce).
    max_tokens: int | None = Field(default=None, ge=1, le=8192, strict=True)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, strict=True)
    # Answer the conversation's last question again (the UI's "retry" after an error)
    # instead of saving it a second time; `message` is then ignored and may be empty.
    regenerate: bool = Field(default=False, strict=True)
    # A turn in a dossier: answered from its passages (chat/grounding.py). Implied by a
    # conversation that belongs to a dossier.
    dossier_id: Text | None = None


@dataclass(frozen=True, slots=True)
class ChatEvent:
    event: Literal["meta", "status", "sources", "token", "extract", "done", "error"]
    data: dict[str, Any]


@dataclass(slots=True)
class PreparedTurn:
    request: ChatRequest
    ref: ModelRef
    message: str
    history: list[dict[str, str]] = field(default_factory=list)
    endpoint: OpenAIEndpoint | None = None
    user_message_id: str | None = None  # regenerate: the question already saved
    dossier_id: str | None = None
    user_id: str = "local"  # who asks: the principal's user id (fair admission's queue)
