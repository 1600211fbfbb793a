"""Picking a model in "Paramètres LLM" warms it (real browser, real app, real
`mlx_lm.server`): the engine's phase shows next to the model while it starts, and the
first message after that needs no start at all."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from legal_assistant.config import Settings

BUNDLED = "mlx:smollm2-135m"
OTHER = "mlx:mlx-community/Qwen2.5-3B-Instruct-4bit"  # in the catalog, never started here
START = 60_000
ANSWER = 120_000


def test_picking_a_model_warms_it_and_shows_its_phase(
    make_ui: Callable[..., Any], settings: Settings, bundled_model: Path
) -> None:
    ui = make_ui(settings)
    page: Page = ui.page
    # A returning user whose last choice was another model: picking the bundled one is a
    # change of model, which warms it.
    page.add_init_script(f"localStorage.setItem('la.model', '{OTHER}')")
    page.goto(ui.live.url)
    page.get_by_test_id("model-button").click()
    dialog = page.get_by_test_id("models-dialog")
    bundled = dialog.locator(f'[data-testid="model-option"][data-id="{BUNDLED}"]')
    expect(bundled.get_by_test_id("model-phase")).to_have_text("")  # nothing runs yet

    with page.expect_request(lambda r: r.url.endswith("/api/engines/start")) as started:
        bundled.click()
    assert json.loads(started.value.post_data or "{}") == {
        "model_id": BUNDLED,
        "warm": True,
        "language": "fr",
    }
    phase = bundled.get_by_test_id("model-phase")
    # The phases stream in from the engine events while it starts, then "Chargé".
    expect(phase).to_have_text(re.compile("Préparation…|Démarrage…|Chargement…|Chargé"))
    ui.shot("20-warming")
    expect(phase).to_have_text("Chargé", timeout=START)
    ui.shot("21-warm")
    dialog.get_by_test_id("models-done").click()

    # The engine is up and its system prompt prefilled: the first message starts nothing.
    box = page.get_by_label("Votre message")
    box.fill("Bonjour")
    box.press("Enter")
    turn = page.get_by_test_id("turn").last
    expect(turn.get_by_test_id("message-meta")).to_contain_text("TTFT", timeout=ANSWER)
    expect(turn.get_by_test_id("status-line")).to_have_count(0)
    assert ui.page_errors == []
    assert ui.foreign_requests() == []

    # Re-clicking the chosen model warms nothing more.
    page.get_by_test_id("model-button").click()
    before = len([u for u in ui.requests if u.endswith("/api/engines/start")])
    bundled.click()
    expect(bundled.get_by_role("radio")).to_be_checked()
    dialog.get_by_test_id("models-done").click()
    assert len([u for u in ui.requests if u.endswith("/api/engines/start")]) == before


def test_the_header_waits_for_the_app_before_it_takes_clicks(
    make_ui: Callable[..., Any], settings: Settings
) -> None:
    """The header's buttons are in the page before the app has booted (it first asks
    who the user is), and have no handler until then: a click there was lost (seen in CI
    on a loaded machine: "Paramètres LLM" clicked, no dialog). The app is disabled until
    it has booted; here its first request is held to keep it booting."""
    ui = make_ui(settings)
    page: Page = ui.page
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route(re.compile(r".*/api/auth/me$"), hold)
    page.goto(ui.live.url)
    button = page.get_by_test_id("model-button")
    expect(button).to_be_visible()
    expect(button).to_be_disabled()  # Playwright's click would wait here, as a user does
    assert len(held) == 1, "the app's first request was not held"
    held[0].continue_()
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_test_id("models-dialog")).to_be_visible()
    assert ui.page_errors == []
