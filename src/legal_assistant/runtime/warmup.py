"""Warm an engine before the user sends: start it, then prefill the chat system prompts
(a dossier's, then the plain chat's).

Why: on a CPU engine, what the user waits for on a first message is the engine start and
the prompt processing of the system prompt. Both can happen while the user is still
typing — when a model is picked in "Paramètres LLM", and at backend start-up for the
default model.

The prefill is one 1-token request in exactly the chat turn's message format (system
prompt, then a user message), so the engine's prompt cache keeps the system prompt's
tokens: mlx_lm.server (0.32) caches the system segment of a chat prompt and reuses the
longest cached prefix (its `usage.prompt_tokens_details.cached_tokens` says how much);
llama-server keeps the prompt in its slot (`cache_prompt`). The real turn that follows
then only processes the user's own words.

Warming is a use of the engine like any other (it holds a lease, so it resets the idle
TTL) but a polite one: it acquires with `warm=True`, which never drains or evicts an
engine that has requests in flight (`engine_busy` instead) — a user's answer is never cut
for a warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import httpx

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.chat.prompts import grounded_system_prompt, system_prompt
from legal_assistant.config import Settings
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.providers import OpenAICompatProvider
from legal_assistant.runtime.supervisor import Supervisor

log = logging.getLogger("legal_assistant.warmup")

# Engine kinds that answer chat completions (an embedding engine is only started).
CHAT_KINDS = frozenset({"mlx", "llamacpp", "vllm"})
# A short first user message: the prompt then diverges from the real turn's right after
# the system segment, so everything before it is what the cache keeps.
_WARM_USER = {"fr": "Bonjour", "en": "Hello"}


def warm_messages(language: Language) -> list[dict[str, str]]:
    """The chat turn's messages (chat/service.py: system prompt, history, user) for a
    new conversation, with a stand-in user message."""
    return [
        {"role": "system", "content": system_prompt(language)},
        {"role": "user", "content": _WARM_USER[language]},
    ]


def grounded_warm_messages(language: Language) -> list[dict[str, str]]:
    """The same for a turn in a dossier (chat/grounding.py: its own system prompt)."""
    return [
        {"role": "system", "content": grounded_system_prompt(language)},
        {"role": "user", "content": _WARM_USER[language]},
    ]


@dataclass(frozen=True, slots=True)
class WarmResult:
    model: str
    engine: str
    started: bool  # this warm-up started the engine (else it was already up)
    prefilled: bool
    seconds: float


async def warm(
    supervisor: Supervisor,
    model: ModelRef | str,
    *,
    language: Language = "fr",
    http: httpx.AsyncClient | None = None,
) -> WarmResult:
    """Start `model`'s engine if needed and prefill the system prompt of `language`.

    Raises `engine_busy` rather than disturb an engine with answers in flight, and the
    start's classified error if the engine cannot start."""
    ref = parse_model_id(model) if isinstance(model, str) else model
    if not ref.managed:
        raise LegalAssistantError("bad_request", f"{ref.provider} models are not supervised")
    t0 = time.monotonic()
    lease = await supervisor.acquire(ref, warm=True)
    try:
        engine = lease.engine
        prefilled = False
        if engine.kind in CHAT_KINDS:
            # The dossier prompt first, the plain chat's last: an engine whose prompt
            # cache keeps one prefix keeps the one most first messages use.
            for messages in (grounded_warm_messages(language), warm_messages(language)):
                await _prefill(
                    f"{engine.base_url}/v1", engine.served_model or ref.name, messages, http
                )
            prefilled = True
        return WarmResult(ref.id, engine.id, lease.started, prefilled, time.monotonic() - t0)
    finally:
        lease.release()


async def _prefill(
    base_url: str,
    served_model: str,
    messages: list[dict[str, str]],
    http: httpx.AsyncClient | None,
) -> None:
    # The chat turn's own client and request shape (streamed, usage included), so the
    # engine tokenizes the warm-up exactly as it will tokenize the turn.
    async with contextlib.AsyncExitStack() as stack:
        client = http or await stack.enter_async_context(httpx.AsyncClient(trust_env=False))
        provider = OpenAICompatProvider(base_url, client=client)
        stream = provider.stream_chat(messages, model=served_model, max_tokens=1, temperature=0.0)
        async with contextlib.aclosing(stream):
            async for _ in stream:
                pass


class Warmer:
    """Background warm-ups for one app: at most one per (model, language) at a time; a
    second request for the same joins the first. Owns its tasks; `aclose` cancels them."""

    def __init__(self, supervisor: Supervisor, http: httpx.AsyncClient | None = None) -> None:
        self._supervisor = supervisor
        self._http = http
        self._tasks: dict[tuple[str, Language], asyncio.Task[WarmResult | None]] = {}

    def start(
        self, model: ModelRef | str, language: Language = "fr"
    ) -> asyncio.Task[WarmResult | None]:
        """Begin warming `model` in the background and return at once. The task's
        result is None when the warm-up failed (logged; the user's own request will
        start the engine and report the error then)."""
        ref = parse_model_id(model) if isinstance(model, str) else model
        key = (ref.id, language)
        running = self._tasks.get(key)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self._run(ref, language), name=f"warm-{ref.id}")
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._forget(key, t))
        return task

    def start_default(self, settings: Settings) -> asyncio.Task[WarmResult | None] | None:
        """At backend start-up: warm the default model unless `warm_default` is off or
        the default is not a supervised model (Ollama, a remote endpoint)."""
        if not settings.warm_default:
            return None
        try:
            ref = parse_model_id(settings.default_model)
        except LegalAssistantError as err:
            log.warning("Not warming the default model %r: %s", settings.default_model, err)
            return None
        return self.start(ref) if ref.managed else None

    def warming(self, model_id: str) -> bool:
        return any(m == model_id and not t.done() for (m, _), t in self._tasks.items())

    def _forget(self, key: tuple[str, Language], task: asyncio.Task[WarmResult | None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _run(self, ref: ModelRef, language: Language) -> WarmResult | None:
        try:
            result = await warm(self._supervisor, ref, language=language, http=self._http)
        except LegalAssistantError as err:
            expected = err.code in ("engine_busy", "shutting_down")
            level = logging.INFO if expected else logging.WARNING
            log.log(level, "Warm-up of %s skipped: %s (%s)", ref.id, err.code, err.detail)
            return None
        except Exception:  # a background task: nobody awaits it to see the error
            log.exception("Warm-up of %s failed", ref.id)
            return None
        log.info(
            "Warmed %s in %.1fs (%s)",
            ref.id,
            result.seconds,
            "started and prefilled" if result.started else "prefilled",
        )
        return result

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
