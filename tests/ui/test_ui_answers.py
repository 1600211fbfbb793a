"""What was checked about an answer, in a real browser (issue 20): citation chips by
verdict (an unsupported one marked, with its tooltip), uncited statements marked, the
one-line summary, the notice of a cut loop with retry / a larger model, the extractive
answer — live, and again when the saved conversation is reopened.

Real app, SurrealDB, extraction worker, embedding engine and claim checker; Debian's
Chromium. A scripted OpenAI-compatible endpoint (tests/fakes/scripted_endpoint.py, in a
thread) stands in for the model, so the answer is known: one sentence quoting the passage
it cites, one citing it for something it does not say, one with no citation; and a loop.
Expectations are read from the saved message (the checker's verdicts), not hard-coded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from app_harness import load_fake
from documents.builders import build_pdf
from legal_assistant.config import OpenAIEndpoint, Settings

scripted = load_fake("scripted_endpoint")
INGEST = 180_000
ANSWER = 60_000
ARTICLE_1382 = (
    "Tout fait quelconque de l'homme, qui cause à autrui un dommage, oblige celui par la "
    "faute duquel il est arrivé à le réparer."
)
SCRIPTS = {
    "checked": scripted.Script(
        f"{ARTICLE_1382[:-1]} [1]. Le locataire doit verser trois mois de loyer d'avance "
        "au bailleur [1]. Le délai de prescription de cette action est de dix ans."
    ),
    "looping": scripted.Script("Le dommage doit être réparé par son auteur.", loop=True),
}
QUESTION = "Que doit faire celui par la faute duquel un dommage est causé à autrui ?"


def ready_dossier(base: str, tmp_path: Path) -> str:
    """A dossier holding article 1382 (real text) on page 2 of a PDF, ingested."""
    with httpx.Client(base_url=base, trust_env=False, timeout=60) as client:
        dossier = client.post("api/dossiers", json={"name": "Responsabilité"}).json()
        pdf = build_pdf(
            tmp_path / "responsabilite.pdf",
            [
                ["Article 1381", "Le propriétaire répond de sa chose."],
                ["Article 1382", ARTICLE_1382],
            ],
        )
        files = [("file", (pdf.name, pdf.read_bytes(), "application/pdf"))]
        assert client.post(f"api/dossiers/{dossier['id']}/documents", files=files).is_success
        return str(dossier["id"])


def saved_answer(base: str, conversation_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, trust_env=False) as client:
        message: dict[str, Any] = client.get(f"api/conversations/{conversation_id}").json()[
            "messages"
        ][-1]
        return message


def check_answer_view(page: Page, answer: dict[str, Any], index: int = 0) -> None:
    """The `index`-th answer on screen says what the saved message says."""
    turn = page.get_by_test_id("assistant-message").nth(index)
    claims = [c for c in answer["claims"] if c["verdict"] != "not_a_claim"]
    sourced = sum(c["verdict"] == "supported" for c in claims)
    plural = "s" if sourced > 1 else ""
    expect(turn.get_by_test_id("claims-summary")).to_have_text(
        f"{sourced} affirmation{plural} sourcée{plural} sur {len(claims)}"
    )
    verdicts = [c["verdict"] for claim in answer["claims"] for c in claim["citations"]]
    chips = turn.get_by_test_id("answer").get_by_test_id("citation")
    expect(chips).to_have_count(len(verdicts))
    assert chips.evaluate_all("els => els.map(e => e.dataset.verdict)") == verdicts
    bad = turn.locator(".cite.is-unsupported")
    expect(bad).to_have_count(verdicts.count("unsupported"))
    for i in range(bad.count()):
        assert "Ce passage ne soutient pas cette phrase" in (
            bad.nth(i).get_attribute("title") or ""
        )
    uncited = [c["text"] for c in claims if c["verdict"] == "uncited"]
    marks = turn.get_by_test_id("uncited-claim")
    expect(marks).to_have_count(len(uncited))
    assert sorted(marks.all_inner_texts()) == sorted(uncited)


def test_ui_checked_claims_stop_notice_and_extract_survive_a_reopen(
    make_ui: Callable[..., Any], settings: Settings, tmp_path: Path
) -> None:
    with scripted.scripted_endpoint_in_thread(SCRIPTS) as endpoint:
        remote = OpenAIEndpoint(name="s", base_url=endpoint.url, models=list(SCRIPTS))
        ui = make_ui(settings.model_copy(update={"openai_endpoints": [remote]}), max_tokens=None)
        page: Page = ui.page
        base = ui.live.url
        dossier_id = ready_dossier(base, tmp_path)
        ui.context.add_init_script(
            "if (!localStorage.getItem('la.model'))"
            " localStorage.setItem('la.model', 'openai:checked')"
        )
        page.goto(f"{base}#/d/{dossier_id}")
        doc = page.get_by_test_id("document").filter(has_text="responsabilite.pdf")
        expect(doc.get_by_test_id("document-status")).to_have_text("Prêt", timeout=INGEST)

        # A checked answer: chips by verdict, the uncited statement marked, the summary.
        page.get_by_test_id("dossier-new-chat").click()
        box = page.get_by_label("Votre message")
        box.fill(QUESTION)
        box.press("Enter")
        turn = page.get_by_test_id("assistant-message").last
        expect(turn.get_by_test_id("claims-summary")).to_be_visible(timeout=ANSWER)
        conversation_id = page.url.rsplit("/", 1)[1]
        answer = saved_answer(base, conversation_id)
        verdicts = [c["verdict"] for c in answer["claims"]]
        assert "uncited" in verdicts, answer["claims"]
        assert any(c["verdict"] == "unsupported" for x in answer["claims"] for c in x["citations"])
        check_answer_view(page, answer)
        ui.shot("answers-01-claims")

        # A loop, in the same conversation: cut, the notice with its two ways out, and
        # (no supported citation) the dossier's passages quoted.
        page.evaluate("localStorage.setItem('la.model', 'openai:looping')")
        page.reload()
        expect(page.get_by_test_id("assistant-message")).to_have_count(1, timeout=ANSWER)
        box = page.get_by_label("Votre message")
        box.fill(QUESTION)
        box.press("Enter")
        looping = page.get_by_test_id("assistant-message").nth(1)
        notice = looping.get_by_test_id("stop-notice")
        expect(notice).to_have_text(
            "Réponse interrompue : le modèle se répétait.RéessayerChoisir un modèle plus grand",
            timeout=ANSWER,
        )
        expect(notice.get_by_test_id("stop-retry")).to_be_visible()
        expect(notice.get_by_test_id("stop-pick-model")).to_be_visible()
        expect(looping.get_by_test_id("answer")).to_have_text(
            "Le dommage doit être réparé par son auteur."
        )
        extract = looping.get_by_test_id("answer-extract")
        expect(extract).to_contain_text("Le modèle n'a pas produit de réponse sourcée")
        expect(extract).to_contain_text("responsabilite.pdf, p. 2")
        expect(extract.get_by_test_id("citation").first).to_be_visible()
        ui.shot("answers-02-loop-and-extract")

        # Reopened from the saved conversation: everything comes back.
        page.reload()
        expect(page.get_by_test_id("assistant-message")).to_have_count(2, timeout=ANSWER)
        check_answer_view(page, answer, 0)
        reopened = page.get_by_test_id("assistant-message").nth(1)
        expect(reopened.get_by_test_id("stop-notice")).to_contain_text(
            "Réponse interrompue : le modèle se répétait."
        )
        expect(reopened.get_by_test_id("stop-retry")).to_be_visible()  # the last answer
        expect(reopened.get_by_test_id("answer-extract")).to_contain_text(
            "responsabilite.pdf, p. 2"
        )
        ui.shot("answers-03-reopened")
        assert not ui.page_errors, ui.page_errors
