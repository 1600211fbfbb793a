"""The web UI's failure and safety paths in a real browser: an engine that cannot start
shows the seed's message inline with a hint (no stack trace), model output is never
injected as HTML, and the page makes no request outside its own origin."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from legal_assistant.config import Settings

NOT_INSTALLED_FR = (
    "❌ Échec du démarrage du serveur MLX. Vérifiez que mlx-lm est installé (uv sync)."
)
NOT_INSTALLED_EN = "❌ The MLX server failed to start. Check that mlx-lm is installed (uv sync)."


def test_ui_engine_not_installed_shows_inline_error(
    make_ui: Callable[..., Any], settings: Settings
) -> None:
    # -I -S: an isolated interpreter without site-packages, so mlx_lm is "missing".
    broken = settings.model_copy(
        update={"mlx_command": [sys.executable, "-I", "-S", "-m", "mlx_lm", "server"]}
    )
    ui = make_ui(broken)
    page: Page = ui.page
    page.goto(ui.live.url)
    box = page.get_by_label("Votre message")
    box.fill("Bonjour")
    box.press("Enter")

    card = page.get_by_test_id("error-card")
    expect(card).to_be_visible(timeout=60_000)
    expect(card.get_by_test_id("error-message")).to_have_text(NOT_INSTALLED_FR)
    expect(card.get_by_test_id("error-hint")).to_contain_text("uv sync")
    expect(page.get_by_test_id("send-button")).to_be_visible()
    text = page.locator("body").inner_text()
    assert "Traceback" not in text
    assert 'File "' not in text
    # No empty assistant bubble is left behind.
    expect(page.get_by_test_id("assistant-message")).to_have_count(0)
    ui.shot("06-error")
    details = card.locator("details")
    if details.count():
        details.locator("summary").click()
        assert "Traceback" not in card.inner_text()
        assert 'File "' not in card.inner_text()
        ui.shot("06a-error-details")

    # "Réessayer" answers the same question again: it is not sent (nor saved) twice.
    card.get_by_role("button", name="Réessayer").click()
    expect(page.get_by_test_id("error-card")).to_have_count(2, timeout=60_000)
    expect(page.get_by_test_id("user-message")).to_have_count(1)
    conversation = httpx.get(f"{ui.live.url}api/conversations", trust_env=False).json()[0]
    assert conversation["message_count"] == 3  # 1 question, 2 failed answers

    # The engine panel shows the engine as failed.
    page.get_by_test_id("engines-button").click()
    chip = page.get_by_test_id("engine-card").first.get_by_test_id("engine-state")
    expect(chip).to_have_text("En échec", timeout=30_000)
    ui.shot("06b-error-engine-panel")

    # Reloaded, the saved failure is still shown as an error card, in the UI's language.
    page.get_by_test_id("lang-en").click()
    page.reload()
    expect(page.get_by_test_id("error-card")).to_have_count(2)  # both failed attempts
    card = page.get_by_test_id("error-card").last
    expect(card.get_by_test_id("error-message")).to_have_text(NOT_INSTALLED_EN)
    expect(card.get_by_test_id("error-hint")).to_contain_text("uv sync")
    assert "Traceback" not in page.locator("body").inner_text()

    assert ui.foreign_requests() == []
    assert ui.page_errors == []


XSS = (
    "Hi <img src=x onerror=alert(1)> and <script>alert(2)</script>\n\n"
    '<a href="javascript:alert(3)">x</a> [click](javascript:alert(4)) '
    '[ok](https://example.org/a?b=1&c="2") <svg onload=alert(5)>\n\n'
    "```html\n<script>alert(6)</script>\n```\n\n"
    "- **bold** and *it* and `<b>code</b>`\n- second\n  1. nested\n\n"
    "## Title <iframe src=x>"
)


def test_ui_markdown_renderer_escapes_html(make_ui: Callable[..., Any], settings: Settings) -> None:
    ui = make_ui(settings)
    page: Page = ui.page
    page.goto(ui.live.url)
    expect(page.get_by_test_id("empty-state")).to_be_visible()

    # Keyboard: Shift+Enter is a new line, not a send.
    box = page.get_by_label("Votre message")
    box.fill("ligne 1")
    box.press("Shift+Enter")
    box.press_sequentially("ligne 2")
    expect(box).to_have_value("ligne 1\nligne 2")
    expect(page.get_by_test_id("user-message")).to_have_count(0)
    expect(page.get_by_test_id("send-button")).to_be_enabled()

    result = page.evaluate(
        """async (source) => {
            const md = await import("./js/markdown.js");
            const html = md.renderMarkdown(source);
            const box = document.createElement("div");
            box.innerHTML = html;
            return {
                html,
                tags: [...box.querySelectorAll("*")].map((el) => el.tagName.toLowerCase()),
                attrs: [...box.querySelectorAll("*")].flatMap((el) =>
                    [...el.attributes].map((a) => a.name + "=" + a.value)),
                links: [...box.querySelectorAll("a")].map((a) => [a.href, a.rel]),
                text: box.textContent,
            };
        }""",
        XSS,
    )
    html = result["html"]
    for tag in ("<img", "<script", "<svg", "<iframe", "<b>", 'href="javascript'):
        assert tag not in html, (tag, html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert not {"img", "script", "svg", "iframe", "b"} & set(result["tags"])
    assert not [a for a in result["attrs"] if a.startswith("on") or "javascript" in a]
    # What the renderer does format, it formats.
    assert {"pre", "code", "ul", "ol", "li", "strong", "em", "h4", "a"} <= set(result["tags"])
    assert result["links"] == [["https://example.org/a?b=1&c=%222%22", "noopener noreferrer"]]
    assert "<script>alert(6)</script>" in result["text"]  # shown as code, as text

    # And through the real rendering path used for answers.
    shown = page.evaluate(
        """async (source) => {
            const chat = await import("./js/chat.js");
            const el = document.createElement("div");
            chat.setMarkdown(el, source);
            return [...el.querySelectorAll("img,script,svg:not(.icon),iframe")].length;
        }""",
        XSS,
    )
    assert shown == 0
    assert ui.foreign_requests() == []
    assert ui.page_errors == []


def test_ui_api_key_is_asked_for_and_sent(make_ui: Callable[..., Any], settings: Settings) -> None:
    key = "s3cret-key"
    ui = make_ui(settings.model_copy(update={"api_key": key}))
    page: Page = ui.page
    page.goto(ui.live.url)

    # The API refuses us: the settings open on the key field.
    dialog = page.get_by_test_id("models-dialog")
    expect(dialog).to_be_visible()
    field = dialog.get_by_label("Clé d'API")
    expect(field).to_be_focused()
    expect(dialog).to_contain_text("❌ Clé d'API manquante ou invalide.")
    ui.shot("10-api-key-required")

    field.fill(key)
    with page.expect_request(lambda r: "/api/models" in r.url) as request:
        dialog.get_by_role("button", name="Enregistrer la clé").click()
    assert request.value.headers.get("authorization") == f"Bearer {key}"
    expect(
        dialog.locator('[data-testid="model-option"][data-id="mlx:smollm2-135m"]')
    ).to_be_visible()
    assert page.evaluate("localStorage.getItem('la.apiKey')") == key
    dialog.get_by_test_id("models-done").click()

    # EventSource cannot send headers: the engine stream carries ?api_key= and connects.
    page.get_by_test_id("engines-button").click()
    expect(page.locator("#engines-live")).to_have_class("panel-sub is-live")
    expect(page.get_by_test_id("engines-empty")).to_be_visible()
    expect(page.get_by_test_id("conversations-empty")).to_be_visible()
    assert ui.foreign_requests() == []
    assert ui.page_errors == []
