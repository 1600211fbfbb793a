"""One chat turn, from request to persisted answer.

Order matters and is the product's promise:
1. validate everything that can be refused (no side effect happens before this);
2. persist the user's message — from here on, nothing the user typed can be lost;
3. managed engine: `acquire` it, forwarding its transitions as status events (only when
   a start actually happens: reuse is instant and silent);
4. stream the answer as token events, holding the engine lease (a switch waits for us);
5. persist the answer with its timings and usage — or what was generated so far, flagged
   partial, if the engine died or the client went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx

from legal_assistant.accounts.principal import LOCAL
from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.chat.answer import Answer, title_of
from legal_assistant.chat.grounding import Grounder
from legal_assistant.chat.prompts import system_prompt
from legal_assistant.chat.sampling import turn_sampling
from legal_assistant.chat.status import StatusFormatter
from legal_assistant.chat.turn import ChatEvent, ChatRequest, PreparedTurn
from legal_assistant.config import OpenAIEndpoint, Settings
from legal_assistant.engine_http import engine_client
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.providers import (
    ChatProvider,
    Finish,
    OllamaProvider,
    OpenAICompatProvider,
    TokenDelta,
    Usage,
)
from legal_assistant.runtime.admission import Admission
from legal_assistant.runtime.lifecycle import Lease
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.store import (
    Database,
    DatabaseError,
    add_message,
    create_conversation,
    get_conversation,
)

log = logging.getLogger("legal_assistant")


class ChatService:
    def __init__(
        self,
        settings: Settings,
        supervisor: Supervisor,
        db: Database,
        *,
        http: httpx.AsyncClient | None = None,
        admission: Admission | None = None,
        grounder: Grounder | None = None,
    ) -> None:
        self.settings = settings
        self.grounder = grounder
        self._admission = admission or Admission.from_settings(settings, supervisor.parallelism)
        self.supervisor = supervisor
        self.db = db
        self._http = http or engine_client()
        self._ollama = OllamaProvider(settings.ollama_url)

    @property
    def ollama(self) -> OllamaProvider:
        """The Ollama client chat turns use; the gateway shares it (one connection pool)."""
        return self._ollama

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._ollama.aclose()

    # ------------------------------------------------------------------ step 1
    async def prepare(self, request: ChatRequest, *, user_id: str = LOCAL.user_id) -> PreparedTurn:
        """Validate a request; raise a 4xx LegalAssistantError, with no side effect.
        `user_id`: who asks (admission queues the turn behind that user's other requests)."""
        message = request.message.strip()
        if request.regenerate and request.conversation_id is None:
            raise LegalAssistantError(
                "bad_request",
                "regenerate needs a conversation_id",
                message_fr="❌ Rien à régénérer : indiquez la conversation.",
                message_en="❌ Nothing to regenerate: name the conversation.",
            )
        if not message and not request.regenerate:
            raise LegalAssistantError(
                "bad_request",
                "empty message",
                message_fr="❌ Le message est vide.",
                message_en="❌ The message is empty.",
            )
        if len(message) > self.settings.max_message_chars:
            raise LegalAssistantError(
                "bad_request",
                f"message longer than {self.settings.max_message_chars} characters",
                message_fr=f"❌ Message trop long (maximum {self.settings.max_message_chars} "
                "caractères).",
                message_en=f"❌ Message too long (at most {self.settings.max_message_chars} "
                "characters).",
            )
        if request.history and len(request.history) > self.settings.max_history_items:
            raise LegalAssistantError(
                "bad_request", f"more than {self.settings.max_history_items} history items"
            )
        # An explicit but empty id is refused; only an absent one means the default.
        model_id = self.settings.default_model if request.model_id is None else request.model_id
        ref = parse_model_id(model_id)
        endpoint = self.endpoint_for(ref) if ref.provider == "openai" else None
        history: list[dict[str, str]] = []
        reused_id: str | None = None
        dossier_id = request.dossier_id
        if request.conversation_id is not None:
            detail = await get_conversation(self.db, request.conversation_id)
            if detail is None:
                raise LegalAssistantError(
                    "not_found",
                    f"conversation {request.conversation_id[:64]!r}",
                    message_fr="❌ Conversation introuvable.",
                    message_en="❌ Conversation not found.",
                )
            if dossier_id not in (None, detail.dossier_id):
                raise LegalAssistantError("bad_request", "the conversation is in another dossier")
            dossier_id = detail.dossier_id
            earlier = detail.messages
            if request.regenerate:
                asked = [i for i, m in enumerate(earlier) if m.role == "user"]
                if not asked:
                    raise LegalAssistantError("bad_request", "no question to answer again")
                question = earlier[asked[-1]]
                message, reused_id = question.content, question.id
                earlier = earlier[: asked[-1]]
            history = [
                {"role": m.role, "content": m.content}
                for m in earlier
                if m.role in ("user", "assistant") and m.content and not m.error_code
            ]
        elif request.history:
            history = [{"role": h.role, "content": h.content} for h in request.history]
        history = history[-self.settings.max_history_items :]
        if dossier_id is not None:
            if self.grounder is None:
                raise LegalAssistantError("bad_request", "dossiers are not available here")
            await self.grounder.check(dossier_id)
        return PreparedTurn(
            request, ref, message, history, endpoint, reused_id, dossier_id, user_id=user_id
        )

    def endpoint_for(self, ref: ModelRef) -> OpenAIEndpoint:
        """The configured OpenAI-compatible endpoint serving `ref` (the gateway relays there)."""
        for ep in self.settings.openai_endpoints:
            if ref.name in ep.models:
                return ep
        raise LegalAssistantError(
            "model_not_found",
            f"no configured OpenAI-compatible endpoint serves {ref.name!r}",
            message_fr=f"❌ Aucun point d'accès OpenAI configuré ne sert le modèle {ref.name}.",
            message_en=f"❌ No configured OpenAI-compatible endpoint serves {ref.name}.",
        )

    # ------------------------------------------------------------------ steps 2-5
    async def stream(self, turn: PreparedTurn) -> AsyncIterator[ChatEvent]:
        req, ref, lang = turn.request, turn.ref, turn.request.language
        t0 = time.monotonic()
        try:
            if req.conversation_id is None:
                conv = await create_conversation(
                    self.db,
                    title=title_of(turn.message),
                    language=lang,
                    model_id=ref.id,
                    dossier_id=turn.dossier_id,
                    owner_id=turn.user_id,  # conversations belong to their author
                )
                conversation_id = conv.id
            else:
                conversation_id = req.conversation_id
            user_message_id = turn.user_message_id
            if user_message_id is None:
                user_msg = await add_message(
                    self.db, conversation_id=conversation_id, role="user", content=turn.message
                )
                user_message_id = user_msg.id
        except (LegalAssistantError, DatabaseError) as exc:
            # Disk full, conversation deleted meanwhile...: nothing was saved, nothing is
            # started; the client gets a classified error, not a dropped connection.
            err = exc.user_error() if isinstance(exc, DatabaseError) else exc
            data = err.to_dict(lang)
            data.update({"conversation_id": req.conversation_id, "message_id": None})
            data["partial"] = False
            yield ChatEvent("error", data)
            return
        yield ChatEvent(
            "meta",
            {
                "conversation_id": conversation_id,
                "user_message_id": user_message_id,
                "model": ref.id,
                "provider": ref.provider,
            },
        )

        answer = Answer(conversation_id=conversation_id, ref=ref)
        lease: Lease | None = None
        slots = contextlib.AsyncExitStack()
        try:
            # Same per-engine concurrency bound as the /v1 gateway ("busy" beyond it).
            if turn.dossier_id is not None and self.grounder is not None:
                answer.grounding = await self.grounder.ground(turn.dossier_id, turn.message)
                yield ChatEvent("sources", answer.grounding.event())
            await slots.enter_async_context(self._admission.slot(ref.id, turn.user_id))
            provider: ChatProvider
            if answer.grounding is not None and not answer.grounding.relevant:
                # Nothing relevant in the dossier: say so rather than let the model invent.
                provider, model_name = answer.grounding.fixed_answer(lang), ref.name
            elif ref.managed:
                acquired: list[Lease] = []
                async for ev in self._acquire(ref, lang, acquired):
                    yield ev
                lease = acquired[0]
                answer.engine_port = lease.engine.port
                answer.started = lease.started
                answer.wait_s = lease.waited_s
                base_url = f"{lease.engine.base_url}/v1"
                provider = OpenAICompatProvider(
                    base_url,
                    client=self._http,
                    read_timeout=self.settings.engine_read_timeout_s,
                )
                model_name = lease.engine.served_model or ref.name
            elif ref.provider == "ollama":
                provider, model_name = self._ollama, ref.name
            else:
                assert turn.endpoint is not None
                provider = OpenAICompatProvider(
                    turn.endpoint.base_url, api_key=turn.endpoint.api_key, client=self._http
                )
                model_name = ref.name
            messages = [
                {"role": "system", "content": system_prompt(lang)},
                *turn.history,
                {"role": "user", "content": turn.message},
            ]
            if answer.grounding is not None:
                messages = answer.grounding.messages(
                    lang, turn.history, turn.message, self.settings.grounding_max_chars
                )
            answer.sent_at = time.monotonic()
            stream = provider.stream_chat(
                messages,
                model=model_name,
                max_tokens=req.max_tokens
                or min(self.settings.chat_max_tokens, self.settings.mlx_max_tokens),
                temperature=req.temperature,
                sampling=turn_sampling(
                    self.settings, ref, lease.engine.model_arg if lease is not None else None
                ),
            )
            async with contextlib.aclosing(stream):
                async for item in stream:
                    if isinstance(item, TokenDelta):
                        looping = answer.add(item.content)
                        yield ChatEvent("token", {"content": item.content})
                        if looping:  # leaving closes the stream: the engine stops at once
                            break
                    elif isinstance(item, Usage):
                        answer.usage = item
                    elif isinstance(item, Finish):
                        answer.finish_reason = item.reason
            answer.settle()
            await answer.check_claims()
            if (extract := answer.extractive(turn.message, lang)) is not None:
                yield ChatEvent("extract", extract)
            message_id = await answer.persist(self.db, t0)
            yield ChatEvent(
                "done",
                {
                    "conversation_id": conversation_id,
                    "message_id": message_id,
                    "usage": answer.usage_dict(),
                    "timings": answer.timings(t0),
                    "model": ref.id,
                    "provider": ref.provider,
                    "engine_port": answer.engine_port,
                    "citations": answer.citations(),
                    **answer.ending(lang),
                    "claims": answer.claims_dicts(),
                },
            )
        except Exception as exc:
            err = self._classify_failure(exc, lease)
            answer.error = err
            try:
                message_id = await answer.persist(self.db, t0)
            except LegalAssistantError:  # the storage failed too: report the first error
                message_id = None
            data = err.to_dict(lang)
            data.update({"conversation_id": conversation_id, "message_id": message_id})
            data["partial"] = bool(answer.parts)
            yield ChatEvent("error", data)
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: keep what was generated, flagged partial. Shielded so
            # the cancellation that brought us here does not also cancel the write.
            answer.cancelled = True
            with contextlib.suppress(LegalAssistantError):  # nobody is left to tell
                await asyncio.shield(asyncio.ensure_future(answer.persist(self.db, t0)))
            raise
        finally:
            if lease is not None:
                lease.release()
            await slots.aclose()

    @staticmethod
    def _classify_failure(exc: Exception, lease: Lease | None) -> LegalAssistantError:
        """Every failure of a turn ends as a classified error event (the partial answer
        saved): an engine that sent nothing for ENGINE_READ_TIMEOUT_S is wedged — it is
        failed and restarted on the next request —; anything unexpected is logged and
        reported as internal_error, never a dropped stream."""
        if isinstance(exc, LegalAssistantError):
            if exc.code == "timeout" and lease is not None:
                lease.engine.report_wedged(exc.detail)
                return LegalAssistantError("engine_wedged", exc.detail, log_tail=exc.log_tail)
            return exc
        log.exception("Chat turn failed unexpectedly")
        return LegalAssistantError("internal_error", f"{type(exc).__name__}: {exc}")

    async def _acquire(
        self, ref: ModelRef, lang: Language, out: list[Lease]
    ) -> AsyncIterator[ChatEvent]:
        """Acquire the engine (into `out`), yielding status events while it starts."""
        fmt = StatusFormatter(lang, time.time())
        async with contextlib.aclosing(self.supervisor.acquire_events(ref)) as events:
            async for item in events:
                if isinstance(item, Lease):
                    out.append(item)
                elif item is not None and (payload := fmt(item)) is not None:
                    yield ChatEvent("status", payload)
