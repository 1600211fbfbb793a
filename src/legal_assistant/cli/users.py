"""`legal-assistant users add | list | disable | passwd` and `legal-assistant audit`.

They work whether the backend runs or not:

* backend stopped: the command takes the data directory's lock (store/lock.py) and works
  on the database itself, then lets go — the backend cannot start meanwhile, and two
  writers never share the embedded database;
* backend running (the lock is held): through its API, authenticated by the CLI token
  the backend wrote into the data directory (`cli-token`, readable by its OS user
  only; accounts/service.py) or `API_KEY`.

`legal-assistant audit` is in cli/audit.py, on the same two paths.

`--password-stdin` reads the password from standard input (scripts, provisioning); without
it the password is asked twice on the terminal, hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import typer
from rich.table import Table

from legal_assistant.cli.common import auth_headers, backend_url, console, fail, load_settings, out
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError

if TYPE_CHECKING:  # the database stack is imported when a command runs, not at CLI start-up
    from legal_assistant.accounts.users import UserRecord
    from legal_assistant.store import Database

users_app = typer.Typer(help="Accounts (AUTH_MODE=accounts): add, list, disable, passwd.")

T = TypeVar("T")
URL = typer.Option(None, "--url", help="Backend URL (default: the configured host and port).")


def read_password(from_stdin: bool, min_chars: int) -> str:
    if from_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < min_chars:
        raise fail(f"Password too short: at least {min_chars} characters.")
    return password


@contextlib.asynccontextmanager
async def direct_db(settings: Settings) -> AsyncIterator[Database | None]:
    """The database, opened here under the data directory's lock; None when a running
    backend holds the lock (then ask it over HTTP)."""
    from legal_assistant.store import Database, DataDirLock

    lock: DataDirLock | None = None
    if settings.surrealdb_url is None or settings.surrealdb_url.startswith(("surrealkv", "file")):
        lock = DataDirLock(settings.data_dir)
        try:
            lock.acquire()
        except LegalAssistantError as err:
            if err.code == "data_dir_locked":
                yield None
                return
            raise
    db = Database()
    try:
        await db.connect(
            settings.resolved_surrealdb_url,
            settings.surrealdb_namespace,
            settings.surrealdb_database,
            settings.surrealdb_user,
            settings.surrealdb_password,
        )
        yield db
    finally:
        await db.close()
        if lock is not None:
            lock.release()


async def api(settings: Settings, url: str | None, method: str, path: str, **kw: Any) -> Any:
    """One request to the running backend; its refusal raised as LegalAssistantError."""
    async with httpx.AsyncClient(
        base_url=backend_url(settings, url),
        headers=auth_headers(settings),
        timeout=httpx.Timeout(60, connect=5),
        trust_env=False,
    ) as client:
        resp = await client.request(method, path, **kw)
    data = resp.json() if resp.content else {}
    if resp.status_code >= 400:
        err = data.get("error", {}) if isinstance(data, dict) else {}
        message = str(err.get("message") or resp.text[:200])
        detail = str(err.get("detail", ""))
        try:
            raise LegalAssistantError(
                str(err.get("code")), detail, message_fr=message, message_en=message
            )
        except ValueError:  # a code this client does not know
            raise LegalAssistantError(
                "upstream_error", detail, message_fr=message, message_en=message
            ) from None
    return data


def run(
    settings: Settings,
    url: str | None,
    direct: Callable[[Database], Awaitable[T]],
    remote: Callable[[], Awaitable[T]],
) -> T:
    """`direct` on the data directory when no backend holds it, else `remote`."""

    async def go() -> T:
        if url is not None:
            return await remote()
        async with direct_db(settings) as db:
            if db is not None:
                return await direct(db)
        return await remote()

    try:
        return asyncio.run(go())
    except LegalAssistantError as err:
        raise fail(err) from None
    except httpx.ConnectError:
        raise fail(f"No backend answers at {backend_url(settings, url)}.") from None


def _print_users(users: list[dict[str, Any]]) -> None:
    table = Table("username", "role", "disabled", "id", "created")
    for u in users:
        table.add_row(
            u["username"], u["role"], "yes" if u["disabled"] else "", u["id"], u["created_at"][:19]
        )
    out.print(table)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="Username (a-z 0-9 . _ -)."),
    admin: bool = typer.Option(False, "--admin", help="An administrator (else a member)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    url: str | None = URL,
) -> None:
    """Add a user; the first admin adopts the dossiers and conversations made before."""
    settings = load_settings()
    password = read_password(password_stdin, settings.min_password_chars)
    role: Literal["admin", "member"] = "admin" if admin else "member"

    async def direct(db: Database) -> dict[str, Any]:
        from legal_assistant.accounts import audit, migration
        from legal_assistant.accounts.users import create_user

        user = await create_user(
            db,
            username=name,
            password=password,
            role=role,
            min_password_chars=settings.min_password_chars,
        )
        if role == "admin":
            await migration.adopt_orphans(db)
        await audit.record(db, user="cli", action="user.create", resource=user.id, outcome="ok")
        return user.model_dump()

    async def remote() -> dict[str, Any]:
        body = {"username": name, "password": password, "role": role}
        data: dict[str, Any] = await api(settings, url, "POST", "/api/users", json=body)
        return data

    user = run(settings, url, direct, remote)
    console.print(f"[green]✅ {user['role']} {user['username']} added[/green] ({user['id']})")


@users_app.command("list")
def list_(url: str | None = URL) -> None:
    """Every user, with role and state."""
    settings = load_settings()

    async def direct(db: Database) -> list[dict[str, Any]]:
        from legal_assistant.accounts.users import list_users

        return [u.model_dump() for u in await list_users(db)]

    async def remote() -> list[dict[str, Any]]:
        data = await api(settings, url, "GET", "/api/users")
        return list(data["users"])

    _print_users(run(settings, url, direct, remote))


async def _user_id_over_http(settings: Settings, url: str | None, name: str) -> str:
    users = (await api(settings, url, "GET", "/api/users"))["users"]
    found = next((u for u in users if u["username"] == name.strip().lower()), None)
    if found is None:
        raise LegalAssistantError("not_found", f"user {name!r}")
    return str(found["id"])


async def _user(db: Database, name: str) -> UserRecord:
    from legal_assistant.accounts.users import find_user

    user = await find_user(db, name)
    if user is None:
        raise LegalAssistantError("not_found", f"user {name!r}")
    return user


def _change(name: str, url: str | None, **change: Any) -> dict[str, Any]:
    settings = load_settings()

    async def direct(db: Database) -> dict[str, Any]:
        from legal_assistant.accounts import audit
        from legal_assistant.accounts.users import update_user

        user = await _user(db, name)
        changed = await update_user(
            db, user.id, min_password_chars=settings.min_password_chars, **change
        )
        assert changed is not None
        await audit.record(db, user="cli", action="user.change", resource=user.id, outcome="ok")
        return changed.model_dump()

    async def remote() -> dict[str, Any]:
        user_id = await _user_id_over_http(settings, url, name)
        data: dict[str, Any] = await api(
            settings, url, "PATCH", f"/api/users/{user_id}", json=change
        )
        return data

    return run(settings, url, direct, remote)


@users_app.command("disable")
def disable(name: str = typer.Argument(...), url: str | None = URL) -> None:
    """Disable a user: their sessions end, their keys stop working."""
    user = _change(name, url, disabled=True)
    console.print(f"[green]✅ {user['username']} disabled[/green]")


@users_app.command("passwd")
def passwd(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
    url: str | None = URL,
) -> None:
    """Set a user's password: their sessions end."""
    password = read_password(password_stdin, load_settings().min_password_chars)
    user = _change(name, url, password=password)
    console.print(f"[green]✅ password of {user['username']} changed[/green]")
