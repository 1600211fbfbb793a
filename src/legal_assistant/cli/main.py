"""`legal-assistant`: serve the app, ask one question, manage engines and models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import typer
from rich.table import Table

from legal_assistant.cli.audit import audit_command
from legal_assistant.cli.brief import brief_command
from legal_assistant.cli.common import (
    auth_headers,
    backend_url,
    console,
    fail,
    get_json,
    load_settings,
    out,
)
from legal_assistant.cli.doctor import doctor
from legal_assistant.cli.dossiers import dossiers_app
from legal_assistant.cli.engines import engines_app
from legal_assistant.cli.models import models_app
from legal_assistant.cli.render import render
from legal_assistant.cli.users import users_app
from legal_assistant.config import Settings
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.sse_client import iter_sse

app = typer.Typer(
    help="Legal Assistant — assistant juridique local et privé.", no_args_is_help=True
)
app.add_typer(engines_app, name="engines")
app.add_typer(dossiers_app, name="dossiers")
app.add_typer(users_app, name="users")  # accounts: add, list, disable, passwd
app.add_typer(models_app, name="models")  # models (the catalog), models cache, models remove
app.command("doctor")(doctor)
app.command("brief")(brief_command)
app.command("audit")(audit_command)


# --------------------------------------------------------------------------- serve
@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8000)."),
) -> None:
    """Run the API and the web UI (Ctrl+C stops it and every engine it started)."""
    import uvicorn

    from legal_assistant.api.app import create_app

    settings = load_settings(host=host, port=port)
    # uvicorn would run the whole start-up and then fail to bind: say it clearly first.
    from legal_assistant.runtime.ports import port_busy_error, port_is_free

    try:
        free = port_is_free(settings.port, settings.host)
    except OSError as e:
        raise fail(f"Cannot bind {settings.host}:{settings.port}: {e.strerror or e}") from e
    if not free:
        other = settings.port + 1
        err = port_busy_error(
            settings.port,
            hint=(
                f"ou utilisez un autre port (--port {other})",
                f"or use another port (--port {other})",
            ),
        )
        console.print(f"[red]{err.message_fr}[/red]\n[dim]{err.message_en}[/dim]")
        raise typer.Exit(1)
    # The lifespan takes the data-dir lock; a second backend would only learn it from
    # uvicorn's start-up traceback. Checking first turns that into one clear line.
    if settings.surrealdb_url is None or settings.surrealdb_url.startswith(("surrealkv", "file")):
        from legal_assistant.store import DataDirLock

        lock = DataDirLock(settings.data_dir)
        try:
            lock.acquire()
        except LegalAssistantError as err:
            console.print(f"[red]{err.message_fr}[/red] [dim]({err.detail})[/dim]", soft_wrap=True)
            raise typer.Exit(1) from None
        lock.release()
    console.print(
        f"[bold]Legal Assistant[/bold] → http://{settings.host}:{settings.port}  "
        f"[dim](data: {settings.data_dir})[/dim]"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


# --------------------------------------------------------------------------- ask
@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    model: str = typer.Option(None, "--model", "-m", help="Model id, e.g. mlx:smollm2-135m."),
    lang: str = typer.Option("fr", "--lang", "-l", help="fr or en."),
    url: str = typer.Option(None, help="Use this running backend instead of in-process."),
    dossier: str = typer.Option(
        None, "--dossier", "-d", help="Answer from this dossier's documents (id or name)."
    ),
) -> None:
    """Ask one question: starts the model if needed, streams the answer."""
    settings = load_settings()
    language: Language = "en" if lang == "en" else "fr"
    code = asyncio.run(_ask(settings, question, model, language, url, dossier))
    raise typer.Exit(code)


async def _ask(
    settings: Settings,
    question: str,
    model: str | None,
    language: Language,
    url: str | None,
    dossier: str | None = None,
) -> int:
    body: dict[str, Any] = {"message": question, "language": language}
    if model:
        body["model_id"] = model
    if dossier:
        body["dossier_id"] = dossier  # an id or a name: resolved by each path below
    if url is None:
        from legal_assistant.store import DataDirLock

        lock = DataDirLock(settings.data_dir)
        try:
            lock.acquire()
        except LegalAssistantError:
            # A backend owns this data dir: ask it instead of opening the DB twice.
            url = backend_url(settings, None)
        else:
            try:
                return await render(_ask_in_process(settings, body), language)
            finally:
                lock.release()
    return await render(_ask_http(settings, url, body), language)


async def _ask_in_process(
    settings: Settings, body: dict[str, Any]
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    from legal_assistant.chat.service import ChatService
    from legal_assistant.chat.turn import ChatRequest
    from legal_assistant.runtime.supervisor import Supervisor
    from legal_assistant.store import Database

    db = Database()
    await db.connect(
        settings.resolved_surrealdb_url,
        settings.surrealdb_namespace,
        settings.surrealdb_database,
        settings.surrealdb_user,
        settings.surrealdb_password,
    )
    supervisor = Supervisor(settings)
    supervisor.reap_orphans()
    grounder = library = None
    if body.get("dossier_id"):
        from legal_assistant.cli.dossiers import in_process_grounding

        try:
            body["dossier_id"], grounder, library = await in_process_grounding(
                settings, db, supervisor, body["dossier_id"]
            )
        except BaseException:
            await db.close()
            raise
    chat = ChatService(settings, supervisor, db, grounder=grounder)
    try:
        turn = await chat.prepare(ChatRequest(**body))
        async for ev in chat.stream(turn):
            yield ev.event, ev.data
    finally:
        await supervisor.shutdown()
        await chat.aclose()
        if library is not None:
            await library.aclose()
        await db.close()


async def _ask_http(
    settings: Settings, url: str, body: dict[str, Any]
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5), trust_env=False) as c:
        try:
            if body.get("dossier_id"):
                from legal_assistant.cli.dossiers import resolve_over_http

                body["dossier_id"] = await resolve_over_http(
                    c, url, auth_headers(settings), body["dossier_id"]
                )
            async with c.stream(
                "POST", f"{url}/api/chat/stream", json=body, headers=auth_headers(settings)
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    yield "error", resp.json().get("error", {"message": resp.text})
                    return
                async for item in iter_sse(resp):
                    yield item
        except httpx.ConnectError as e:
            raise LegalAssistantError("provider_unavailable", f"no backend at {url}") from e


# --------------------------------------------------------------------------- models
@models_app.callback(invoke_without_command=True)
def list_models(ctx: typer.Context, url: str = typer.Option(None, help="Backend URL.")) -> None:
    """List the model catalog (what "Paramètres LLM" offers)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()

    async def run() -> dict[str, Any]:
        try:
            return await get_json(settings, url, "/api/models")
        except httpx.ConnectError:
            from legal_assistant.api.routes.models import build_catalog
            from legal_assistant.runtime.supervisor import Supervisor

            sup = Supervisor(settings)
            try:
                return await build_catalog(settings, sup)
            finally:
                await sup.shutdown()

    data = asyncio.run(run())
    table = Table("id", "label", "size", "offline", "loaded")
    for m in data["models"]:
        size = f"{m['size_bytes'] / 1024**3:.2f} GB" if m.get("size_bytes") else "?"
        default = " [bold](défaut)[/bold]" if m.get("default") else ""
        table.add_row(
            m["id"],
            m["label"] + default,
            size,
            "✓" if m["available_offline"] else "",
            "●" if m["loaded"] else "",
        )
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
