"""The web UI in a real browser against the real app, the real `mlx_lm.server` and the
bundled model: pick the model, chat with streamed answers and the seed's status lines,
reload, stop a generation, stop/start the engine from the engine panel, English."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from legal_assistant.config import Settings

BUNDLED = "mlx:smollm2-135m"
BUNDLED_LABEL = "🍎 SmolLM2 135M (MLX) - Intégré, hors ligne"
START = 60_000  # an engine cold start on a busy 2-core machine, generously
ANSWER = 120_000  # the first answer of a fresh engine (warm-up) included


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Votre message").or_(page.get_by_label("Your message"))
    box.fill(text)
    box.press("Enter")


def last_turn(page: Page) -> Locator:
    return page.get_by_test_id("turn").last


def wait_answer(page: Page) -> None:
    """The last turn's answer is complete: its metadata line shows model and TTFT."""
    meta = last_turn(page).get_by_test_id("message-meta")
    expect(meta).to_contain_text("TTFT", timeout=ANSWER)
    expect(page.get_by_test_id("send-button")).to_be_visible()


def test_ui_chat_engine_panel_and_language(
    make_ui: Callable[..., Any], settings: Settings, bundled_model: Path
) -> None:
    ui = make_ui(settings)
    page: Page = ui.page
    page.goto(ui.live.url)

    # Empty chat, French by default.
    expect(page.get_by_test_id("empty-state")).to_contain_text("Comment puis-je vous aider ?")
    expect(page.get_by_test_id("model-button")).to_contain_text("SmolLM2 135M")
    expect(page.get_by_test_id("conversations-empty")).to_be_visible()
    ui.shot("01-empty-chat")

    # "Paramètres LLM": the catalog with the seed's labels; the bundled default preselected.
    page.get_by_test_id("model-button").click()
    dialog = page.get_by_test_id("models-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Paramètres LLM")).to_be_visible()
    expect(dialog).to_contain_text("🍎 Qwen 2.5 3B (MLX) - Recommandé Apple Silicon")
    bundled = dialog.locator(f'[data-testid="model-option"][data-id="{BUNDLED}"]')
    expect(bundled).to_contain_text(BUNDLED_LABEL)
    expect(bundled.get_by_test_id("offline-badge")).to_have_text("Disponible hors ligne")
    expect(bundled).to_contain_text("RAM")
    expect(bundled.get_by_role("radio")).to_be_checked()
    bundled.click()
    ui.shot("02-llm-settings")
    dialog.get_by_test_id("models-done").click()
    expect(dialog).to_be_hidden()
    assert page.evaluate("localStorage.getItem('la.model')") == BUNDLED

    # First message: the engine starts, with the seed's status lines, then the answer.
    send(page, "Bonjour")
    turn = last_turn(page)
    starting = turn.get_by_test_id("status-line").filter(has_text="🍎 Démarrage du serveur MLX...")
    expect(starting).to_be_visible(timeout=START)
    ui.shot("03-starting-status")
    ready = turn.get_by_test_id("status-line").filter(has_text="✅ Serveur MLX prêt")
    expect(ready).to_be_visible(timeout=START)
    wait_answer(page)
    answer = turn.get_by_test_id("answer")
    assert answer.inner_text().strip()
    meta = turn.get_by_test_id("message-meta")
    expect(meta).to_contain_text("SmolLM2 135M")
    expect(meta).to_contain_text(re.compile(r"TTFT \d"))
    expect(page.get_by_test_id("conversation-item")).to_have_count(1)
    ui.shot("04-answered")

    # Reload: the conversation is listed and reopened with both messages.
    page.reload()
    item = page.get_by_test_id("conversation-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Bonjour")
    expect(item).to_contain_text("2 messages")
    expect(page.get_by_test_id("user-message")).to_have_count(1)
    expect(page.get_by_test_id("assistant-message")).to_have_count(1)
    expect(page.get_by_test_id("user-message")).to_contain_text("Bonjour")
    page.get_by_test_id("new-chat").click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    item.locator("a").click()
    expect(page.get_by_test_id("assistant-message")).to_have_count(1)

    # Second message: the engine is warm, no start status line for that turn.
    send(page, "Merci")
    wait_answer(page)
    expect(last_turn(page).get_by_test_id("status-line")).to_have_count(0)
    expect(page.get_by_test_id("assistant-message")).to_have_count(2)

    # Stop button: cancels the generation; the partial answer stays (and is persisted).
    page.evaluate("localStorage.setItem('la.maxTokens', '400')")
    send(page, "Raconte-moi une longue histoire sur un avocat.")
    streaming_answer = last_turn(page).get_by_test_id("answer")
    expect(streaming_answer).not_to_be_empty(timeout=ANSWER)
    page.get_by_test_id("stop-button").click()
    expect(last_turn(page).get_by_test_id("message-flag")).to_contain_text("Génération arrêtée")
    expect(page.get_by_test_id("send-button")).to_be_visible()
    assert streaming_answer.inner_text().strip()
    page.evaluate("localStorage.setItem('la.maxTokens', '12')")
    page.reload()
    expect(page.get_by_test_id("assistant-message")).to_have_count(3)
    expect(page.get_by_test_id("message-flag").last).to_contain_text("Génération arrêtée")

    # Engine panel: live state, model, port, memory, logs; stop it from there.
    page.get_by_test_id("engines-button").click()
    panel = page.get_by_test_id("engines-panel")
    expect(panel).to_be_visible()
    card = panel.get_by_test_id("engine-card").first
    expect(card.get_by_test_id("engine-state")).to_have_text("Prêt", timeout=START)
    expect(card).to_contain_text("SmolLM2 135M")
    expect(card).to_contain_text("Port")
    expect(card).to_contain_text("Mo")
    card.get_by_test_id("engine-logs-toggle").click()
    expect(card.get_by_test_id("engine-logs")).not_to_be_empty(timeout=10_000)
    ui.shot("05-engine-panel")
    card.get_by_test_id("engine-logs-toggle").click()
    card.get_by_test_id("engine-toggle").click()
    expect(card.get_by_test_id("engine-state")).to_have_text("Arrêté", timeout=START)
    expect(card.get_by_test_id("engine-toggle")).to_contain_text("Démarrer")

    # The next message starts it again: the start status appears, the panel follows live.
    send(page, "Et maintenant ?")
    turn = last_turn(page)
    expect(
        turn.get_by_test_id("status-line").filter(has_text="🍎 Démarrage du serveur MLX...")
    ).to_be_visible(timeout=START)
    expect(card.get_by_test_id("engine-state")).to_have_text(
        re.compile("Démarrage|Chargement|Prêt"), timeout=START
    )
    wait_answer(page)
    expect(card.get_by_test_id("engine-state")).to_have_text("Prêt", timeout=START)

    # English, on a cold engine: stop it, switch, start a new conversation.
    card.get_by_test_id("engine-toggle").click()
    expect(card.get_by_test_id("engine-state")).to_have_text("Arrêté", timeout=START)
    page.get_by_test_id("lang-en").click()
    expect(card.get_by_test_id("engine-state")).to_have_text("Stopped")
    expect(page.get_by_label("Your message")).to_have_attribute(
        "placeholder", "Write your question…"
    )
    page.get_by_test_id("new-chat").click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("How can I help you?")
    send(page, "Hello")
    turn = last_turn(page)
    expect(
        turn.get_by_test_id("status-line").filter(has_text="🍎 Starting the MLX server...")
    ).to_be_visible(timeout=START)
    expect(turn.get_by_test_id("status-line").filter(has_text="✅ MLX server ready")).to_be_visible(
        timeout=START
    )
    wait_answer(page)
    expect(page.get_by_test_id("conversation-item")).to_have_count(2)
    ui.shot("07-english")
    assert page.evaluate("localStorage.getItem('la.lang')") == "en"

    # Phone width: the sidebar becomes a drawer, the engine panel an overlay.
    page.get_by_test_id("engines-button").click()
    expect(panel).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_test_id("composer-input")).to_be_visible()
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    ui.shot("08-phone")
    page.get_by_role("button", name="Show conversations").click()
    expect(page.locator("#sidebar")).to_be_in_viewport(ratio=1)
    ui.shot("09-phone-conversations")

    # Delete a conversation (two-step, inline confirmation).
    english = page.get_by_test_id("conversation-item").filter(has_text="Hello")
    english.get_by_role("button", name=re.compile("Delete")).click()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_test_id("conversation-item")).to_have_count(1)
    expect(page.get_by_test_id("empty-state")).to_be_visible()

    assert ui.foreign_requests() == []
    assert ui.page_errors == []
