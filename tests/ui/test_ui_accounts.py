"""Accounts mode in a real browser (Debian's Chromium) against the real app (real SurrealDB,
real sessions, CSRF tokens, access policy and audit log): the login page, a dossier walled
from a colleague until its owner shares it, then unshared; an admin creates a user and
reads the audit log; a key shown once; a revoked session back to the login page.

One backend for the module (the flows need no fresh state); every managed engine is the
fake engine (tests/fakes/fake_engine.py) — no flow here asks a model anything. Users are
made through the API with the CLI token the running backend writes (as `legal-assistant
users add` does), one browser context per person."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from app_harness import fake_engine_command, make_settings

PASSWORD = "correct horse battery staple"
USERS = {"alice": "admin", "bob": "member", "carol": "member"}


@pytest.fixture(scope="module")
def live(
    module_server: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("ui-accounts")
    command = fake_engine_command()
    settings = make_settings(
        root,
        root / "models",
        auth_mode="accounts",
        engines_dir=root / "engines",
        mlx_command=command,
        llamacpp_command=command,
        vllm_command=command,
        load_timeout_s=10.0,
    )
    server = module_server(settings)
    token = (settings.data_dir / "cli-token").read_text().strip()
    with httpx.Client(
        base_url=server.url,
        trust_env=False,
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    ) as cli:
        for name, role in USERS.items():
            resp = cli.post(
                "/api/users", json={"username": name, "password": PASSWORD, "role": role}
            )
            assert resp.status_code == 201, resp.text
    yield server


def sign_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(url)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("account-name")).to_have_text(username)


def open_menu_item(page: Page, testid: str) -> None:
    page.get_by_test_id("account-button").click()
    page.get_by_test_id(testid).click()


def test_login_page_wrong_then_right_password_then_logout(
    live: Any, ui_on: Callable[..., Any]
) -> None:
    ui = ui_on(live)
    page: Page = ui.page
    page.goto(live.url)
    login = page.get_by_test_id("login-page")
    expect(login).to_be_visible()
    expect(page.locator(".app")).to_be_hidden()
    expect(login.get_by_role("heading")).to_have_text("Connexion")
    ui.shot("accounts-01-login")

    page.get_by_label("Nom d'utilisateur").fill("bob")
    page.get_by_label("Mot de passe").fill("not the password at all")
    page.get_by_test_id("login-submit").click()
    error = page.get_by_test_id("login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("incorrect")
    expect(page.get_by_test_id("account-button")).to_have_count(0)

    # English, then the right password: the app, with bob in the header.
    login.get_by_role("button", name="EN").click()
    expect(login.get_by_role("heading")).to_have_text("Sign in")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("account-name")).to_have_text("bob")
    expect(login).to_have_count(0)
    expect(page.get_by_test_id("new-chat")).to_be_visible()
    expect(page.get_by_test_id("dossiers-empty")).to_be_visible()
    # A member is not offered the admin sheet.
    page.get_by_test_id("account-button").click()
    expect(page.get_by_test_id("menu-admin")).to_have_count(0)

    page.get_by_test_id("menu-logout").click()
    expect(page.get_by_test_id("login-page")).to_be_visible()
    assert page.context.request.get(f"{live.url}api/auth/me").status == 401
    assert ui.foreign_requests() == []
    assert ui.page_errors == []


def test_dossier_walled_shared_then_unshared(live: Any, ui_on: Callable[..., Any]) -> None:
    owner = ui_on(live)
    bob: Page = owner.page
    sign_in(bob, live.url, "bob")
    bob.get_by_test_id("new-dossier").click()
    field = bob.get_by_test_id("create-dossier-input")
    field.fill("Succession Martin")
    with bob.expect_request(
        lambda r: r.url.endswith("/api/dossiers") and r.method == "POST"
    ) as created:
        field.press("Enter")
    # State-changing requests carry the session's CSRF token.
    assert created.value.headers.get("x-csrf-token")
    expect(bob.get_by_test_id("dossier-title")).to_have_text("Succession Martin")
    match = re.search(r"#/d/([^/]+)$", bob.url)
    assert match, bob.url
    dossier_url = f"{live.url}#/d/{match.group(1)}"
    panel = bob.get_by_test_id("sharing-panel")
    expect(panel.get_by_test_id("sharing-owner")).to_contain_text("bob")
    expect(panel.get_by_test_id("sharing-empty")).to_be_visible()

    # carol cannot see it: not listed, and its address says it does not exist.
    colleague = ui_on(live)
    carol: Page = colleague.page
    sign_in(carol, live.url, "carol")
    expect(carol.get_by_test_id("dossiers-empty")).to_be_visible()
    carol.goto(dossier_url)
    expect(carol.locator(".dossier-head")).to_contain_text("Ce dossier n'existe plus.")
    expect(carol.get_by_test_id("dossier-item")).to_have_count(0)

    # An unknown colleague is refused with the server's reason; then share with carol.
    panel.get_by_test_id("share-username").fill("nobody")
    panel.get_by_test_id("share-submit").click()
    expect(bob.locator(".toast-error")).to_contain_text("Utilisateur inconnu")
    panel.get_by_test_id("share-username").fill("carol")
    panel.get_by_test_id("share-role").select_option("reader")
    panel.get_by_test_id("share-submit").click()
    member = panel.locator('[data-testid="member"][data-username="carol"]')
    expect(member).to_be_visible()
    expect(member.get_by_test_id("member-role")).to_have_value("reader")
    panel.scroll_into_view_if_needed()
    expect(bob.locator(".toast")).to_have_count(0)  # a clean screenshot
    owner.shot("accounts-02-sharing")

    # carol sees it now, as a reader: no rename/delete, no sharing controls.
    carol.reload()
    expect(carol.get_by_test_id("dossier-title")).to_have_text("Succession Martin")
    expect(carol.get_by_test_id("dossier-item")).to_have_count(1)
    carol_panel = carol.get_by_test_id("sharing-panel")
    expect(carol_panel.get_by_test_id("sharing-not-owner")).to_contain_text("(lecteur)")
    expect(carol.get_by_test_id("dropzone")).to_have_count(1)
    expect(carol.get_by_test_id("dropzone")).to_be_hidden()  # readers do not upload
    expect(carol_panel.get_by_test_id("share-submit")).to_have_count(0)
    head = carol.locator(".dossier-head")
    expect(head.get_by_role("button", name=re.compile("Renommer"))).to_have_count(0)
    expect(head.get_by_role("button", name=re.compile("Supprimer"))).to_have_count(0)

    # Promote to editor, then unshare: gone for carol.
    member.get_by_test_id("member-role").select_option("editor")
    expect(bob.locator(".toast").last).to_contain_text("Partage mis à jour")
    carol.reload()
    expect(carol_panel.get_by_test_id("sharing-not-owner")).to_contain_text("(éditeur)")
    expect(carol.get_by_test_id("dropzone")).to_be_visible()
    member.get_by_test_id("member-remove").click()
    expect(panel.get_by_test_id("sharing-empty")).to_be_visible()
    carol.reload()
    expect(carol.locator(".dossier-head")).to_contain_text("Ce dossier n'existe plus.")
    expect(carol.get_by_test_id("dossier-item")).to_have_count(0)
    assert owner.page_errors == [] and colleague.page_errors == []


def test_admin_creates_user_and_reads_audit(live: Any, ui_on: Callable[..., Any]) -> None:
    ui = ui_on(live)
    page: Page = ui.page
    sign_in(page, live.url, "alice")
    open_menu_item(page, "menu-admin")
    sheet = page.get_by_test_id("admin-sheet")
    expect(sheet.locator('[data-testid="user-row"][data-username="bob"]')).to_be_visible()

    sheet.get_by_test_id("user-name").fill("dave")
    sheet.get_by_test_id("user-password").fill("short")
    sheet.get_by_test_id("user-create").click()
    expect(sheet.get_by_test_id("user-error")).to_be_visible()  # too short: the server's reason
    sheet.get_by_test_id("user-password").fill(PASSWORD)
    sheet.get_by_test_id("user-create").click()
    dave = sheet.locator('[data-testid="user-row"][data-username="dave"]')
    expect(dave).to_be_visible()
    expect(dave.get_by_test_id("user-row-role")).to_have_value("member")
    dave.get_by_test_id("user-toggle").click()
    expect(dave).to_have_class(re.compile("is-disabled"))
    dave.get_by_test_id("user-toggle").click()
    expect(dave).not_to_have_class(re.compile("is-disabled"))
    with httpx.Client(base_url=live.url, trust_env=False, timeout=30) as client:
        resp = client.post("/api/auth/login", json={"username": "dave", "password": PASSWORD})
        assert resp.status_code == 200, resp.text

    # The audit log, filtered by user: alice's own login is there.
    sheet.get_by_test_id("audit-user").fill("alice")
    sheet.get_by_test_id("audit-filter").click()
    entries = sheet.get_by_test_id("audit-entry")
    expect(entries.first).to_be_visible()
    users = set(entries.evaluate_all("rows => rows.map(r => r.children[1].textContent)"))
    assert users == {"alice"}, users
    expect(sheet.get_by_test_id("audit-table")).to_contain_text("login")
    ui.shot("accounts-03-admin")
    assert ui.page_errors == []


def test_key_shown_once_listed_and_deleted(live: Any, ui_on: Callable[..., Any]) -> None:
    ui = ui_on(live)
    page: Page = ui.page
    sign_in(page, live.url, "bob")
    open_menu_item(page, "menu-keys")
    sheet = page.get_by_test_id("keys-sheet")
    expect(sheet.get_by_test_id("keys-empty")).to_be_visible()
    sheet.get_by_test_id("key-name").fill("Cabinet script")
    sheet.get_by_test_id("key-scope-read").check()
    sheet.get_by_test_id("key-models").fill("mlx:smollm2-135m")
    sheet.get_by_test_id("key-daily").fill("5000")
    sheet.get_by_test_id("key-create").click()
    secret = sheet.get_by_test_id("key-secret")
    expect(secret).to_have_text(re.compile(r"^la-\S+\.\S+$"))
    key = secret.text_content() or ""
    row = sheet.get_by_test_id("key-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Cabinet script")
    expect(row).to_contain_text("mlx:smollm2-135m")
    ui.shot("accounts-04-key-once")

    # The key acts as bob (read scope).
    with httpx.Client(base_url=live.url, trust_env=False, timeout=30) as client:
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        assert me.json()["user"]["username"] == "bob"

    # Shown once: reopened, the sheet lists the key but no longer shows it.
    page.keyboard.press("Escape")
    open_menu_item(page, "menu-keys")
    expect(sheet.get_by_test_id("key-row")).to_have_count(1)
    expect(sheet.get_by_test_id("key-once")).to_have_count(0)
    assert key not in (sheet.text_content() or "")
    sheet.get_by_test_id("key-delete").click()
    expect(sheet.get_by_test_id("keys-empty")).to_be_visible()
    assert ui.page_errors == []


def test_revoked_session_returns_to_login(live: Any, ui_on: Callable[..., Any]) -> None:
    ui = ui_on(live)
    page: Page = ui.page
    sign_in(page, live.url, "carol")
    # A password change (here by carol herself, from another browser) ends every session.
    with httpx.Client(base_url=live.url, trust_env=False, timeout=30) as other:
        login = other.post("/api/auth/login", json={"username": "carol", "password": PASSWORD})
        assert login.status_code == 200, login.text
        changed = other.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": PASSWORD + " 2"},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
        assert changed.status_code == 200, changed.text
    page.get_by_test_id("new-dossier").click()
    page.get_by_test_id("create-dossier-input").fill("Après révocation")
    page.get_by_test_id("create-dossier-input").press("Enter")
    expect(page.get_by_test_id("login-page")).to_be_visible()
    expect(page.get_by_test_id("login-notice")).to_contain_text("session a pris fin")
    page.get_by_test_id("login-username").fill("carol")
    page.get_by_test_id("login-password").fill(PASSWORD + " 2")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("account-name")).to_have_text("carol")

    # Back to the old password from the UI: the new session's CSRF token is used next.
    open_menu_item(page, "menu-password")
    sheet = page.get_by_test_id("password-sheet")
    sheet.get_by_label("Mot de passe actuel").fill(PASSWORD + " 2")
    sheet.get_by_label("Nouveau mot de passe", exact=True).fill(PASSWORD)
    sheet.get_by_label("Confirmer le nouveau mot de passe").fill(PASSWORD)
    sheet.get_by_role("button", name="Changer le mot de passe").click()
    expect(sheet).to_be_hidden()
    page.get_by_test_id("new-dossier").click()
    page.get_by_test_id("create-dossier-input").fill("Après le changement")
    page.get_by_test_id("create-dossier-input").press("Enter")
    expect(page.get_by_test_id("dossier-title")).to_have_text("Après le changement")
    assert ui.page_errors == []


def test_auth_mode_none_has_no_login_and_no_account_menu(
    make_ui: Callable[..., Any], tmp_path: Path
) -> None:
    """Today's single-user mode is unchanged: straight into the app, no account menu."""
    ui = make_ui(make_settings(tmp_path, tmp_path / "models", mlx_command=fake_engine_command()))
    page: Page = ui.page
    with page.expect_response(lambda r: r.url.endswith("/api/auth/me")) as me:
        page.goto(ui.live.url)
    assert me.value.json()["auth_mode"] == "none"
    expect(page.get_by_test_id("conversations-empty")).to_be_visible()
    expect(page.get_by_test_id("new-chat")).to_be_visible()
    expect(page.get_by_test_id("login-page")).to_have_count(0)
    expect(page.get_by_test_id("account-button")).to_have_count(0)
    # A dossier's page as before: its owner's buttons, no sharing section.
    page.get_by_test_id("new-dossier").click()
    page.get_by_test_id("create-dossier-input").fill("Seul")
    page.get_by_test_id("create-dossier-input").press("Enter")
    expect(page.get_by_test_id("dossier-title")).to_have_text("Seul")
    head = page.locator(".dossier-head")
    expect(head.get_by_role("button", name=re.compile("Renommer"))).to_be_visible()
    expect(page.get_by_test_id("dropzone")).to_be_visible()
    expect(page.get_by_test_id("sharing-panel")).to_have_count(0)
    assert ui.page_errors == []
