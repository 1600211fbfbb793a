"""What every chat provider yields, and the one method the gateway calls on it.

A provider turns a chat request into a stream of small items: text deltas as they are
generated, then (when the server reports it) one `Usage`. Keeping this vocabulary tiny
lets the MLX engine (OpenAI-compatible HTTP), Ollama and remote OpenAI-compatible servers
be swapped behind the gateway without it knowing which protocol is on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias


@dataclass(frozen=True, slots=True)
class TokenDelta:
    """A piece of generated text, in order; never empty."""

    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as reported by the model server (not re-counted by us)."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Finish:
    """Why the server ended the answer, when it says: "stop", or "length" (max_tokens)."""

    reason: str


StreamItem: TypeAlias = TokenDelta | Usage | Finish


class ChatProvider(Protocol):
    """A model server that can stream a chat answer.

    Declared with a plain `def` (not `async def`) so that an `async def ... yield`
    implementation matches it: an async generator function is not a coroutine function,
    and `async def f() -> AsyncIterator[T]` in a Protocol would mean "a coroutine returning
    an iterator", which no generator satisfies under mypy. The return type is
    `AsyncGenerator` rather than `AsyncIterator` so callers can `aclose()` it (or wrap it
    in `contextlib.aclosing`) with full typing.

    Contract for implementations:
    * errors are raised as `LegalAssistantError` (provider_unavailable, upstream_error,
      engine_crashed, model_not_found, timeout), never as raw transport exceptions;
    * `sampling`: more request fields (`top_p`, `repetition_penalty`...: chat/sampling.py),
      under an explicit `temperature`;
    * closing the generator (`aclose()`, or cancelling the task iterating it) closes the
      upstream HTTP response at once, so the model server stops generating for a client
      that went away. Callers should iterate inside `contextlib.aclosing(...)`.
    """

    def stream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        sampling: Mapping[str, float] | None = None,
    ) -> AsyncGenerator[StreamItem, None]: ...
