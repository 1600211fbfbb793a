"""Sign in and out: `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`,
`POST /api/auth/password` (one's own password). docs/accounts.md."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from legal_assistant.accounts import sessions
from legal_assistant.accounts.passwords import verify_password
from legal_assistant.accounts.policy import CurrentPrincipal, note
from legal_assistant.accounts.users import get_user, update_user
from legal_assistant.api.deps import ApiKey, State
from legal_assistant.errors import LegalAssistantError

router = APIRouter(dependencies=[ApiKey])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: str
    username: str
    role: Literal["admin", "member"]


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str | None = None  # send it back in X-CSRF-Token on POST/PUT/PATCH/DELETE
    auth_mode: Literal["none", "accounts"] = "accounts"
    via: Literal["session", "key", "local"] = "session"


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


def _accounts_mode(state: State) -> None:
    if state.accounts is None or not state.accounts.enabled:
        raise LegalAssistantError(
            "bad_request",
            "accounts are off (LEGAL_ASSISTANT_AUTH_MODE=none)",
            message_fr="❌ Les comptes ne sont pas activés (AUTH_MODE=none) : pas de connexion.",
            message_en="❌ Accounts are off (AUTH_MODE=none): there is nothing to sign in to.",
        )


def _set_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/api/auth/login")
async def login(body: LoginIn, request: Request, response: Response, state: State) -> LoginOut:
    """A session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and its CSRF
    token. 401 `login_failed` whatever was wrong; 429 with Retry-After when throttled."""
    _accounts_mode(state)
    assert state.accounts is not None
    address = request.client.host if request.client else "?"
    user, token, csrf = await state.accounts.login(body.username, body.password, address)
    _set_cookie(response, request, token)
    return LoginOut(
        user=UserOut(id=user.id, username=user.username, role=user.role), csrf_token=csrf
    )


@router.post("/api/auth/logout")
async def logout(request: Request, response: Response, state: State) -> dict[str, bool]:
    _accounts_mode(state)
    token = request.cookies.get(sessions.COOKIE_NAME)
    if token:
        await sessions.close_session(state.db, token)
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="strict")
    await note(request, "ok", "logout")
    return {"signed_out": True}


@router.get("/api/auth/me")
async def me(request: Request, principal: CurrentPrincipal, state: State) -> LoginOut:
    """Who this request is; `csrf_token` again for a session (a reloaded page lost it)."""
    session = getattr(request.state, "session", None)
    on = state.accounts is not None and state.accounts.enabled
    return LoginOut(
        user=UserOut(id=principal.user_id, username=principal.username, role=principal.role),
        csrf_token=session.csrf_token if isinstance(session, sessions.Session) else None,
        auth_mode="accounts" if on else "none",
        via="local" if not on else ("key" if principal.key_id else "session"),
    )


@router.post("/api/auth/password")
async def change_password(
    body: PasswordIn,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    state: State,
) -> LoginOut:
    """Change one's own password: every session of the user ends, this one is replaced."""
    _accounts_mode(state)
    user = await get_user(state.db, principal.user_id)
    if user is None or not await verify_password(user.password_hash, body.current_password):
        await note(request, "failed", "password")
        raise LegalAssistantError("login_failed")
    await update_user(
        state.db,
        user.id,
        password=body.new_password,
        min_password_chars=state.settings.min_password_chars,
    )
    await note(request, "ok", "password")
    token, csrf = await sessions.open_session(state.db, user.id)
    _set_cookie(response, request, token)
    return LoginOut(
        user=UserOut(id=user.id, username=user.username, role=user.role), csrf_token=csrf
    )
