"""The generated fiche without the app: a ~60-page decision (parsed by the real parser)
written section by section through a scripted OpenAI-compatible endpoint
(brief_helpers.scripted_model, a stand-in for a small model: see its docstring) — the
prompts it receives stay bounded and hold only their section's zones."""

from __future__ import annotations

from pathlib import Path

from app_harness import make_settings
from judgments.brief_helpers import ASK, long_decision, scripted_model
from legal_assistant.claims.checker import ClaimChecker
from legal_assistant.config import OpenAIEndpoint
from legal_assistant.documents.model import Page
from legal_assistant.judgments.brief import build_brief
from legal_assistant.judgments.chat_model import ChatModel
from legal_assistant.judgments.decision import Decision, PageText
from legal_assistant.judgments.fiche import Brief
from legal_assistant.judgments.generated import ModelWriter, claim_support
from legal_assistant.judgments.parse import analyse
from legal_assistant.runtime.supervisor import Supervisor


async def test_prompts_stay_bounded_for_a_60_page_decision(
    tmp_path: Path, models_dir: Path
) -> None:
    text = long_decision()
    assert len(text) > 150_000  # ~60 pages of ~2,500 characters
    judgment = analyse([Page(1, text)], False)
    assert judgment.is_judgment and len(judgment.paragraphs) > 400
    decision = Decision(judgment, [PageText(1, text)])
    async with scripted_model() as model:
        model.script = [(ASK["faits"], "M. [K] a été engagé comme technicien en 2011 [§ 1].")]
        endpoint = OpenAIEndpoint(name="scripted", base_url=model.base_url, models=["scripted"])
        settings = make_settings(tmp_path, models_dir, openai_endpoints=[endpoint])
        supervisor = Supervisor(settings)
        chat = ChatModel(settings, supervisor, "openai:scripted")
        writer = ModelWriter(chat, claim_support(ClaimChecker(None)))
        try:
            items = [item async for item in build_brief(decision, "x" * 32, writer=writer)]
        finally:
            await chat.aclose()
            await supervisor.shutdown()
    brief = items[-1]
    assert isinstance(brief, Brief) and brief.model == "openai:scripted"
    assert len(model.prompts) == 7
    for messages in model.prompts:
        size = sum(len(m["content"]) for m in messages)
        assert size < 6_000, size  # ~1,500 tokens: fits a 4k context with the answer
    faits = next(m[-1]["content"] for m in model.prompts if ASK["faits"] in m[-1]["content"])
    assert "[§ 1] Selon l'arrêt attaqué (Lyon, 3 novembre 2022)" in faits
    moyens = next(m[-1]["content"] for m in model.prompts if ASK["moyens"] in m[-1]["content"])
    assert "fait grief à l'arrêt de la condamner" in moyens
    assert "Selon l'arrêt attaqué" not in moyens
    written = brief.section("faits")
    assert written is not None and written.source == "generated"
    assert written.statements[0].paragraphs == (1,)
