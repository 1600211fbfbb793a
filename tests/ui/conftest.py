"""Real-browser fixtures for the web UI: the real app served by uvicorn on a free loopback
port (in a background thread with its own event loop), and Debian's Chromium driven by
Playwright's sync API.

Chromium comes from the system (`apt-get install -y chromium`): Playwright's own browser
download is not reachable here. Tests are skipped when it is missing."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from legal_assistant.api.app import create_app
from legal_assistant.config import Settings

CHROMIUM = os.environ.get("LEGAL_ASSISTANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


@dataclass
class LiveServer:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def start_server(settings: Settings) -> LiveServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced by the fixture
            errors.append(exc)

    thread = threading.Thread(target=run, name="ui-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"the app did not start: {errors!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not start within 60 s")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}/", settings, server, thread, errors)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=60)
    assert not live.thread.is_alive(), "the app did not shut down within 60 s"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing browser is a broken setup
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class UI:
    """One browser context on the live server, recording every request it makes."""

    live: LiveServer
    page: object
    context: object
    requests: list[str]
    page_errors: list[str]
    artifacts: Path

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path))  # type: ignore[attr-defined]
        return path

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.live.origin + "/")]


def open_ui(
    browser: object,
    live: LiveServer,
    artifacts: Path,
    *,
    max_tokens: int | None = 12,
    viewport: tuple[int, int] = (1280, 800),
) -> UI:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": viewport[0], "height": viewport[1]},
        locale="fr-FR",
        timezone_id="Europe/Paris",
    )
    if max_tokens is not None:
        # Before any page script runs: short answers keep the tests fast.
        context.add_init_script(
            f"try {{ if (!localStorage.getItem('la.maxTokens')) "
            f"localStorage.setItem('la.maxTokens', '{max_tokens}'); }} catch (e) {{}}"
        )
    page = context.new_page()
    requests: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    return UI(live, page, context, requests, page_errors, artifacts)


@pytest.fixture
def make_ui(browser: object, artifacts: Path) -> Iterator[object]:
    """make_ui(settings, **open_ui kwargs) -> UI, on a fresh live server."""
    servers: list[LiveServer] = []
    uis: list[UI] = []

    def make(settings: Settings, **kwargs: object) -> UI:
        live = start_server(settings)
        servers.append(live)
        ui = open_ui(browser, live, artifacts, **kwargs)  # type: ignore[arg-type]
        uis.append(ui)
        return ui

    try:
        yield make
    finally:
        for ui in uis:
            ui.context.close()  # type: ignore[attr-defined]
        for live in servers:
            stop_server(live)


@pytest.fixture(scope="module")
def module_server() -> Iterator[object]:
    """module_server(settings) -> LiveServer: one live server shared by a module's tests
    (for flows that need no fresh state per test); stopped after the module."""
    servers: list[LiveServer] = []

    def make(settings: Settings) -> LiveServer:
        live = start_server(settings)
        servers.append(live)
        return live

    try:
        yield make
    finally:
        for live in servers:
            stop_server(live)


@pytest.fixture
def ui_on(browser: object, artifacts: Path) -> Iterator[object]:
    """ui_on(live, **open_ui kwargs) -> UI: a fresh browser context (its own cookies: one
    person) on an existing live server; closed after the test."""
    uis: list[UI] = []

    def make(live: LiveServer, **kwargs: object) -> UI:
        ui = open_ui(browser, live, artifacts, **kwargs)  # type: ignore[arg-type]
        uis.append(ui)
        return ui

    try:
        yield make
    finally:
        for ui in uis:
            ui.context.close()  # type: ignore[attr-defined]
