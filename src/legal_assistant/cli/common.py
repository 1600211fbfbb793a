"""What every `legal-assistant` subcommand shares: settings, the two consoles, errors, and
how to reach the running backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console

from legal_assistant.config import Settings
from legal_assistant.errors import Language, LegalAssistantError

console = Console(stderr=True)  # status, progress and errors
out = Console()  # results (tables, answers): what a pipe should get


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        message = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
        # One line, whatever the terminal width (soft_wrap: rich does not fold it).
        console.print(f"[red]Configuration error:[/red] {message}", soft_wrap=True)
        raise typer.Exit(2) from e


def fail(err: LegalAssistantError | str, language: Language = "fr") -> typer.Exit:
    if isinstance(err, LegalAssistantError):
        console.print(f"[red]{err.message(language)}[/red]")
        if err.detail:
            console.print(f"[dim]{err.detail}[/dim]")
        for line in err.log_tail[-8:]:
            console.print(f"[dim]  │ {line}[/dim]")
    else:
        console.print(f"[red]{err}[/red]")
    return typer.Exit(1)


def backend_url(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.host}:{settings.port}").rstrip("/")


def auth_headers(settings: Settings) -> dict[str, str]:
    """`API_KEY` when set; else, in accounts mode, the token the running backend wrote
    into the data directory for the terminal of its own OS user (accounts/service.py)."""
    if settings.api_key:
        return {"Authorization": f"Bearer {settings.api_key}"}
    from legal_assistant.accounts.service import read_cli_token

    token = read_cli_token(settings.data_dir) if settings.auth_mode == "accounts" else None
    return {"Authorization": f"Bearer {token}"} if token else {}


async def get_json(settings: Settings, url: str | None, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as c:
        resp = await c.get(f"{backend_url(settings, url)}{path}", headers=auth_headers(settings))
        data: dict[str, Any] = resp.json()
        if resp.status_code >= 400:
            err = data.get("error", {})
            raise LegalAssistantError(err.get("code", "upstream_error"), err.get("detail", ""))
        return data


def run_cli(coro_factory: Callable[[], Any]) -> Any:
    try:
        return asyncio.run(coro_factory())
    except LegalAssistantError as err:
        raise fail(err) from err
