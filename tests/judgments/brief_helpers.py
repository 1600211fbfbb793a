"""Helpers of the fiche tests: a scripted model and the decisions to feed it.

`scripted_model` stands in for a chat model behind an OpenAI-compatible endpoint
(`OPENAI_ENDPOINTS`): the same wire protocol as mlx_lm.server / llama-server / vLLM
(`POST /v1/chat/completions`, streamed SSE chunks, `data: [DONE]`), answering each
section's prompt with a scripted text — a small local model cannot be made to write a
given right or wrong sentence on demand, and that is what these tests check. It records
every prompt it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette.sse import EventSourceResponse

from app_harness import free_port, wait_until

FAIL = "<<fail>>"


@dataclass
class ScriptedModel:
    base_url: str
    # Answer for a prompt: the first (needle, answer) whose needle is in the user message.
    script: list[tuple[str, str]] = field(default_factory=list)
    prompts: list[list[dict[str, str]]] = field(default_factory=list)

    def answer(self, messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        for needle, answer in self.script:
            if needle in user:
                return answer
        return ""


def _scripted_app(model: ScriptedModel) -> FastAPI:
    api = FastAPI()

    @api.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        body = await request.json()
        model.prompts.append(body["messages"])
        answer = model.answer(body["messages"])
        if answer == FAIL:
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=500)

        async def chunks() -> AsyncIterator[str]:
            for word in answer.split(" "):
                delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                yield json.dumps(delta, ensure_ascii=False)
            yield "[DONE]"

        return EventSourceResponse(chunks())

    return api


@contextlib.asynccontextmanager
async def scripted_model() -> AsyncIterator[ScriptedModel]:
    """The scripted model served in this event loop."""
    port = free_port()
    model = ScriptedModel(f"http://127.0.0.1:{port}/v1")
    config = uvicorn.Config(_scripted_app(model), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 30, "the scripted model is up")
    try:
        yield model
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def scripted_model_thread() -> Iterator[ScriptedModel]:
    """The scripted model served from a thread (for the synchronous browser tests)."""
    port = free_port()
    model = ScriptedModel(f"http://127.0.0.1:{port}/v1")
    config = uvicorn.Config(_scripted_app(model), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.02)
    assert server.started, "the scripted model did not start"
    try:
        yield model
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# The asks of judgments/generated.py, in French: which section a prompt is for.
ASK = {
    "presentation": "Présente l'arrêt",
    "faits": "Résume les faits",
    "procedure": "Résume la procédure",
    "moyens": "Expose la thèse",
    "probleme": "Formule le problème",
    "solution": "Énonce la solution",
    "portee": "Dégage la portée",
}

# Scripted answers for ECLI_FR_CCASS_2024_C201162 (a cassation, 2e civ., 5 Dec. 2024).
CORRECT = (
    "À la suite du décès de son époux, Mme [E], résidant en Algérie, a déposé le 22 octobre "
    "2013 une demande de pension de réversion auprès de la caisse de retraite algérienne [§ 1]."
)
LABEL = "Résumé des faits :"
WRONG_CITATION = (
    "L'assurée a saisi d'un recours une juridiction chargée du contentieux de la sécurité "
    "sociale pour contester la date d'effet de sa pension [§ 8]."
)
FABRICATED = "La Cour affirme que « la caisse a commis une faute inexcusable » [§ 9]."
LOOP = " ".join(["La portée de cet arrêt est considérable."] * 30)
QUESTION = (
    "La date d'introduction d'une demande de pension de réversion déposée auprès de "
    "l'institution algérienne s'impose-t-elle à l'institution française [§ 9] ?"
)


def script_for_c201162(fail_at: str | None = None) -> list[tuple[str, str]]:
    answers = {
        "faits": f"{LABEL}\n{CORRECT}",
        "procedure": WRONG_CITATION,
        "solution": FABRICATED,
        "portee": LOOP,
        "probleme": QUESTION,
    }
    script = [(ASK[k], FAIL if k == fail_at else v) for k, v in answers.items()]
    if fail_at is not None and fail_at not in answers:
        script.insert(0, (ASK[fail_at], FAIL))
    return script


def section(brief: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in brief["sections"] if s["key"] == key)
    return found


def long_decision(paragraphs: int = 480) -> str:
    """A ~60-page decision in the Cour de cassation's post-2019 form: a real header, a
    long `expose` of numbered paragraphs, one ground, the Court's answer, the ruling."""
    filler = (
        "La société a produit de nouvelles pièces relatives à l'exécution du contrat de "
        "travail, aux horaires pratiqués et aux sommes versées au titre des primes, que la "
        "cour d'appel a examinées au regard des conclusions des parties et des attestations "
        "versées aux débats, sans qu'aucune d'elles ne soit écartée des débats."
    )
    lines = [
        "SOC.",
        "",
        "COUR DE CASSATION",
        "",
        "Audience publique du 11 décembre 2024",
        "",
        "Rejet",
        "",
        "Mme MONGE, conseiller doyen faisant fonction de président",
        "",
        "Arrêt n° 1290 F-D",
        "",
        "Pourvoi n° B 23-10.001",
        "",
        "R É P U B L I Q U E F R A N Ç A I S E",
        "",
        "AU NOM DU PEUPLE FRANÇAIS",
        "",
        "ARRÊT DE LA COUR DE CASSATION, CHAMBRE SOCIALE, DU 11 DÉCEMBRE 2024",
        "",
        "La société Alpha, dont le siège est [Adresse 1], a formé le pourvoi n° B 23-10.001 "
        "contre l'arrêt rendu le 3 novembre 2022 par la cour d'appel de Lyon (chambre "
        "sociale), dans le litige l'opposant à M. [T] [K], domicilié [Adresse 2], défendeur "
        "à la cassation.",
        "",
        "Faits et procédure",
        "",
        "1. Selon l'arrêt attaqué (Lyon, 3 novembre 2022), M. [K] a été engagé par la société "
        "Alpha en qualité de technicien le 2 mai 2011.",
        "",
    ]
    for n in range(2, paragraphs):
        lines += [f"{n}. {filler}", ""]
    n = paragraphs
    lines += [
        "Examen du moyen",
        "",
        "Enoncé du moyen",
        "",
        f"{n}. La société fait grief à l'arrêt de la condamner à payer au salarié une somme "
        "à titre de rappel de primes, alors « que la prime n'est due qu'aux salariés présents "
        "à la date de son versement ».",
        "",
        "Réponse de la Cour",
        "",
        f"{n + 1}. Ayant constaté que la prime rémunérait l'activité de l'année écoulée, la "
        "cour d'appel en a exactement déduit qu'elle était due au prorata du temps de présence.",
        "",
        f"{n + 2}. Le moyen n'est donc pas fondé.",
        "",
        "PAR CES MOTIFS, la Cour :",
        "",
        "REJETTE le pourvoi ;",
        "",
        "Condamne la société Alpha aux dépens ;",
        "",
        "Ainsi fait et jugé par la Cour de cassation, chambre sociale, et prononcé par le "
        "président en son audience publique du onze décembre deux mille vingt-quatre.",
    ]
    return "\n".join(lines)
