"""The Ollama API ⇄ OpenAI chat: requests, NDJSON answers, model listings, `keep_alive`.

Ollama's `options` map to OpenAI fields (`num_predict` → `max_tokens`, `temperature`,
`top_p`, `top_k`, `min_p`, `seed`, `stop`, penalties). Load-time options (`num_ctx`,
`num_gpu`, `num_thread`, `use_mmap`...) are ignored on purpose: the backend alone decides
how an engine loads (as the OpenAI gateway refuses `draft_model`), and Ollama clients
send them routinely. Tool use is translated in `ollama_tools.py`. What the engines cannot
do — images, structured `format`, thinking, templates, `suffix` — is refused with a
message naming it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from legal_assistant.catalog import ModelRef, ollama_name
from legal_assistant.errors import LegalAssistantError
from legal_assistant.gateway.ollama_tools import ToolCalls, answered_call, assistant_calls, tools_of
from legal_assistant.runtime.model_traits import ModelTraits

# Ollama's default `keep_alive`, when a request names none: back to our configured TTL.
_DURATION = re.compile(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_ROLES = ("system", "user", "assistant", "tool")
# Far enough to mean "never" (Ollama shows keep_alive=-1 the same way).
NEVER = "2318-01-01T00:00:00Z"


def invalid(detail: str) -> LegalAssistantError:
    return LegalAssistantError(
        "bad_request",
        detail,
        message_fr=f"❌ Requête invalide : {detail}",
        message_en=f"❌ Invalid request: {detail}",
    )


def _unsupported(feature: str) -> LegalAssistantError:
    return invalid(f"{feature} not supported: the local engines behind this API take text only")


def parse_keep_alive(value: Any) -> float | None:
    """Seconds to keep the model loaded after the answer: a number of seconds or a Go
    duration ("5m", "1h30m", "-1"); 0 = unload at once, negative = keep loaded; None when
    the request names none."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid("keep_alive: a duration such as '5m' or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = _DURATION.findall(body)
        if parts and "".join(n + u for n, u in parts) == body:
            return sign * sum(float(n) * _UNITS[u] for n, u in parts)
    raise invalid(f"keep_alive: {str(value)[:40]!r} is not a duration such as '5m' or '-1'")


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise invalid("options: an object is required")
    out: dict[str, Any] = {}
    for name, target in _OPTIONS.items():
        if options.get(name) is not None:
            out[target] = options[name]
    if options.get("repeat_penalty") is not None:
        # mlx_lm.server and llama-server name it differently; each ignores the other's.
        out["repetition_penalty"] = out["repeat_penalty"] = options["repeat_penalty"]
    num_predict = options.get("num_predict")
    if isinstance(num_predict, int) and not isinstance(num_predict, bool) and num_predict >= 0:
        out["max_tokens"] = num_predict  # -1 (no limit) and -2 (fill the context): none
    stop = options.get("stop")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise invalid("options.stop: a list of strings is required")
        out["stop"] = stop
    return out


def _refuse_features(body: dict[str, Any], *, tools: bool = False) -> None:
    if body.get("tools") and not tools:
        raise _unsupported("tools are (use /api/chat)")
    if body.get("format"):
        raise _unsupported("structured output ('format') is")
    if body.get("think"):
        raise _unsupported("thinking ('think') is")
    if body.get("images"):
        raise _unsupported("images are")
    for name in ("template", "suffix", "context"):
        if body.get(name):
            raise _unsupported(f"'{name}' is")


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """An `/api/chat` body → an OpenAI chat body (without `model`)."""
    _refuse_features(body, tools=True)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages: a list of messages is required")
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # tool calls not answered yet
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise invalid(f"messages[{i}]: expected a role of system, user, assistant or tool")
        if m.get("images"):
            raise _unsupported("images are")
        if m["role"] == "tool":
            out.append(answered_call(m, pending, i))
            continue
        content = m.get("content") or ""
        if not isinstance(content, str):
            raise invalid(f"messages[{i}].content: a string is required")
        message: dict[str, Any] = {"role": str(m["role"]), "content": content}
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = assistant_calls(m["tool_calls"], i)
            message["tool_calls"], pending = calls, list(calls)
        out.append(message)
    tools = tools_of(body)
    return {"messages": out, **({"tools": tools} if tools else {}), **_options(body)}


def generate_request(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An `/api/generate` body → (engine path, OpenAI body). `raw` prompts go to the text
    completion API as they are; others become a chat turn (with `system` if given)."""
    _refuse_features(body)
    prompt = body.get("prompt") or ""
    system = body.get("system") or ""
    if not isinstance(prompt, str) or not isinstance(system, str):
        raise invalid("prompt and system: strings are required")
    if body.get("raw"):
        return "/v1/completions", {"prompt": prompt, **_options(body)}
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return "/v1/chat/completions", {"messages": messages, **_options(body)}


def timestamp(t: float | None = None) -> str:
    """RFC 3339 in UTC, like Ollama's `created_at`."""
    moment = datetime.fromtimestamp(time.time() if t is None else t, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))


@dataclass
class Reply:
    """One Ollama answer built from the engine's OpenAI chunks: NDJSON lines as they come
    (`line`, `final`), or the whole answer (`whole`). `kind` is "chat" or "generate"."""

    model: str
    kind: str
    started: float = field(default_factory=time.perf_counter)  # the request's arrival
    text: list[str] = field(default_factory=list)
    done_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    chunks: int = 0
    first_at: float | None = None
    tool_calls: ToolCalls = field(default_factory=ToolCalls)
    _head: tuple[bytes, bytes] | None = None
    _tail: bytes = b""

    def feed(self, chunk: dict[str, Any]) -> str:
        """One OpenAI chunk → its text (may be "")."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = usage.get("prompt_tokens")
            self.completion_tokens = usage.get("completion_tokens")
        piece = ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content") if self.kind == "chat" else choice.get("text")
            if content is None and self.kind != "chat":
                content = delta.get("content")
            if content:
                piece += content
                self.chunks += 1
            if self.kind == "chat" and delta.get("tool_calls"):
                self.tool_calls.feed(delta)
                self.chunks += 1
            if choice.get("finish_reason") == "length":
                self.done_reason = "length"
        if piece:
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.text.append(piece)
        return piece

    def _body(self, text: str, done: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "created_at": timestamp()}
        if self.kind == "chat":
            out["message"] = {"role": "assistant", "content": text}
        else:
            out["response"] = text
        out["done"] = done
        return out

    def line(self, text: str) -> bytes:
        """A `done: false` line; with "" it is the harmless keep-alive sent while a cold
        engine starts (clients append empty content). The hot path (one per token): only
        the text and the time are encoded per line."""
        if self._head is None:
            model = json.dumps(self.model, ensure_ascii=False)
            field = "message" if self.kind == "chat" else "response"
            opening = '{"role": "assistant", "content": ' if self.kind == "chat" else ""
            self._head = (
                f'{{"model": {model}, "created_at": "'.encode(),
                f'", "{field}": {opening}'.encode(),
            )
            self._tail = b'}, "done": false}\n' if self.kind == "chat" else b', "done": false}\n'
        start, middle = self._head
        text_json = json.dumps(text, ensure_ascii=False).encode()
        return start + timestamp().encode() + middle + text_json + self._tail

    def _stats(self, load_s: float, ready_at: float | None) -> dict[str, Any]:
        now = time.perf_counter()
        ready = ready_at or self.started
        first = self.first_at or now
        return {
            "done_reason": self.done_reason,
            "total_duration": _ns(now - self.started),
            "load_duration": _ns(load_s),
            "prompt_eval_count": self.prompt_tokens or 0,
            "prompt_eval_duration": _ns(first - ready),
            "eval_count": self.completion_tokens or self.chunks,
            "eval_duration": _ns(now - first),
        }

    def calls_line(self) -> bytes:
        """The answer's tool calls, whole, in one `done: false` line (b"" when none), as
        Ollama streams them; raises `upstream_error` for unusable arguments."""
        if not self.tool_calls.calls:
            return b""
        body = self._body("", False)
        body["message"]["tool_calls"] = self.tool_calls.ollama()
        return (json.dumps(body, ensure_ascii=False) + "\n").encode()

    def final(self, load_s: float, ready_at: float | None) -> bytes:
        body = {**self._body("", True), **self._stats(load_s, ready_at)}
        return (json.dumps(body) + "\n").encode()

    def whole(self, load_s: float, ready_at: float | None) -> dict[str, Any]:
        body = self._body("".join(self.text), True)
        if self.tool_calls.calls:
            body["message"]["tool_calls"] = self.tool_calls.ollama()
        return {**body, **self._stats(load_s, ready_at)}


# ---------------------------------------------------------------------- listings
def digest(model_id: str) -> str:
    """A stable digest per model id (clients show and compare it; nothing to verify)."""
    return hashlib.sha256(model_id.encode()).hexdigest()


def details(ref: ModelRef) -> dict[str, Any]:
    name = ref.name.lower()
    size = re.search(r"(\d+(?:\.\d+)?)([mb])(?![a-z])", name)
    quant = re.search(r"(\d+)-?bit", name)
    fmt = {"mlx": "mlx", "llamacpp": "gguf"}.get(ref.provider, ref.provider)
    return {
        "parent_model": "",
        "format": fmt,
        "family": "",
        "families": None,
        "parameter_size": f"{size.group(1)}{size.group(2).upper()}" if size else "",
        "quantization_level": f"Q{quant.group(1)}" if quant else "",
    }


def tag_entry(ref: ModelRef, size: int | None) -> dict[str, Any]:
    """One `/api/tags` model."""
    name = ollama_name(ref)
    return {
        "name": name,
        "model": name,
        "modified_at": timestamp(0),
        "size": size or 0,
        "digest": digest(ref.id),
        "details": details(ref),
    }


def ps_entry(ref: ModelRef, size: int, expires_in_s: float | None) -> dict[str, Any]:
    """One `/api/ps` model; `expires_at` from the idle TTL (none: never)."""
    expires = timestamp(time.time() + expires_in_s) if expires_in_s is not None else NEVER
    return {**tag_entry(ref, size), "expires_at": expires, "size_vram": 0}


def show_body(ref: ModelRef, *, embedding: bool, traits: ModelTraits) -> dict[str, Any]:
    """`/api/show`: what we know of the model (no Modelfile: the backend chose how it
    runs): `capabilities` with `tools` when it calls tools, the context window as
    `model_info["<architecture>.context_length"]`, where Ollama clients read it."""
    arch = traits.architecture or ref.provider
    info: dict[str, Any] = {"general.architecture": arch, "general.basename": ref.name}
    if traits.context_length:
        info[f"{arch}.context_length"] = traits.context_length
    capabilities = ["embedding"] if embedding else ["completion"]
    if not embedding and traits.offers_tools(ref.managed):
        capabilities.append("tools")
    return {
        "modelfile": f"# Served by Legal Assistant\nFROM {ref.id}\n",
        "parameters": "",
        "template": "",
        "details": details(ref),
        "model_info": info,
        "capabilities": capabilities,
        "modified_at": timestamp(0),
    }


# ---------------------------------------------------------------------- embeddings
def embed_inputs(body: dict[str, Any], *, legacy: bool) -> list[str]:
    """The texts of `/api/embed` (`input`: a string or a list) or of the legacy
    `/api/embeddings` (`prompt`), raw: the embedding engine applies e5's prefix itself
    (`passage: ` unless the request says `input_type: "query"`)."""
    if body.get("dimensions") is not None:
        raise _unsupported("'dimensions' is")
    value = body.get("prompt") if legacy else body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise invalid("input: a string or a list of strings is required")
    return texts


def embedding_vectors(data: Any, n: int, model_id: str) -> list[list[float]]:
    """The vectors of an OpenAI `/v1/embeddings` answer, in input order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != n:
        raise LegalAssistantError("upstream_error", f"{model_id} returned no embeddings")
    ordered = sorted(items, key=lambda d: int(d.get("index", 0)))
    return [list(d["embedding"]) for d in ordered]
