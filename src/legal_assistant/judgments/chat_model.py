"""The chat model a fiche is written with: resolved, started on demand, asked, watched.

The same machinery as a chat turn (chat/service.py): the model id is parsed by the
catalog; a managed engine (mlx:, llamacpp:, vllm:) is acquired from the supervisor — its
start is reported as the chat's `status` lines (🍎 Démarrage du serveur MLX..., ✅ Serveur
MLX prêt) — and held under a lease for the whole fiche, so no switch or idle unload
happens between two sections; Ollama and configured OpenAI-compatible endpoints are
called directly. Every request goes through the per-engine admission (the same fair,
per-user bound as the chat and /v1).

Each completion is watched for loops (chat/degeneration.py): a model that repeats itself
is cut off and its text flagged `degenerate`, so none of it can be verified.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from legal_assistant.accounts.principal import LOCAL
from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.chat.degeneration import LoopWatcher
from legal_assistant.chat.status import StatusFormatter
from legal_assistant.config import Settings
from legal_assistant.engine_http import engine_client
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.judgments.brief import BriefEvent
from legal_assistant.providers import ChatProvider, OllamaProvider, OpenAICompatProvider, TokenDelta
from legal_assistant.runtime.admission import Admission
from legal_assistant.runtime.lifecycle import Lease
from legal_assistant.runtime.supervisor import Supervisor


@dataclass(frozen=True, slots=True)
class Completion:
    text: str  # what the model wrote (its repeated tail cut off when it looped)
    degenerate: bool


def endpoint_for(settings: Settings, ref: ModelRef) -> tuple[str, str | None]:
    for ep in settings.openai_endpoints:
        if ref.name in ep.models:
            return ep.base_url, ep.api_key
    raise LegalAssistantError(
        "model_not_found",
        f"no configured OpenAI-compatible endpoint serves {ref.name!r}",
        message_fr=f"❌ Aucun point d'accès OpenAI configuré ne sert le modèle {ref.name}.",
        message_en=f"❌ No configured OpenAI-compatible endpoint serves {ref.name}.",
    )


class ChatModel:
    """One model for one fiche. `open()` first (yields status events), then `complete()`
    per section, then `aclose()` (releases the engine lease)."""

    def __init__(
        self,
        settings: Settings,
        supervisor: Supervisor,
        model_id: str,
        *,
        admission: Admission | None = None,
        user_id: str = LOCAL.user_id,
    ) -> None:
        self.settings = settings
        self.ref = parse_model_id(model_id)  # raises a 4xx for a malformed id, before any work
        self.model_id = self.ref.id
        self._supervisor = supervisor
        self._admission = admission or Admission.from_settings(settings, supervisor.parallelism)
        self._user_id = user_id
        self._http = engine_client()
        self._lease: Lease | None = None
        self._provider: ChatProvider | None = None
        self._ollama: OllamaProvider | None = None
        self._model_name = self.ref.name
        if self.ref.provider == "openai":
            endpoint_for(settings, self.ref)  # an unknown remote model: refused up front

    async def open(self, language: Language) -> AsyncIterator[BriefEvent]:
        if self._provider is not None:
            return
        ref = self.ref
        if ref.managed:
            fmt = StatusFormatter(language, time.time())
            async with contextlib.aclosing(self._supervisor.acquire_events(ref)) as events:
                async for item in events:
                    if isinstance(item, Lease):
                        self._lease = item
                    elif item is not None and (payload := fmt(item)) is not None:
                        yield BriefEvent("status", payload)
            assert self._lease is not None
            engine = self._lease.engine
            self._provider = OpenAICompatProvider(
                f"{engine.base_url}/v1",
                client=self._http,
                read_timeout=self.settings.engine_read_timeout_s,
            )
            self._model_name = engine.served_model or ref.name
        elif ref.provider == "ollama":
            self._ollama = OllamaProvider(self.settings.ollama_url)
            self._provider = self._ollama
        else:
            base_url, api_key = endpoint_for(self.settings, ref)
            self._provider = OpenAICompatProvider(base_url, api_key=api_key, client=self._http)

    async def complete(self, messages: list[dict[str, str]], max_tokens: int) -> Completion:
        if self._provider is None:
            raise RuntimeError("ChatModel.open() first")
        watcher = LoopWatcher()
        degenerate = False
        async with self._admission.slot(self.ref.id, self._user_id):
            stream = self._provider.stream_chat(
                messages, model=self._model_name, max_tokens=max_tokens, temperature=0.2
            )
            async with contextlib.aclosing(stream):
                async for item in stream:
                    if isinstance(item, TokenDelta) and watcher.feed(item.content) is not None:
                        degenerate = True
                        break  # closing the stream stops the engine generating
        if not degenerate and watcher.finish() is not None:
            degenerate = True
        return Completion(watcher.text if not degenerate else watcher.kept_text(), degenerate)

    async def aclose(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._ollama is not None:
            await self._ollama.aclose()
        with contextlib.suppress(httpx.HTTPError):
            await self._http.aclose()
