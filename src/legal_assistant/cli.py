"""`legal-assistant`: serve the app, ask one question, manage engines and models."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from legal_assistant.cli_dossiers import dossiers_app, print_sources
from legal_assistant.config import Settings
from legal_assistant.doctor import doctor
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.model_cache import models_app
from legal_assistant.sse_client import iter_sse

app = typer.Typer(
    help="Legal Assistant — assistant juridique local et privé.", no_args_is_help=True
)
engines_app = typer.Typer(help="Supervised inference engines (start, status, stop, logs).")
app.add_typer(engines_app, name="engines")
app.add_typer(dossiers_app, name="dossiers")
app.add_typer(models_app, name="models")  # models (the catalog), models cache, models remove
app.command("doctor")(doctor)
console = Console(stderr=True)
out = Console()


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
    return {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}


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
                return await _render(_ask_in_process(settings, body), language)
            finally:
                lock.release()
    return await _render(_ask_http(settings, url, body), language)


async def _ask_in_process(
    settings: Settings, body: dict[str, Any]
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    from legal_assistant.chat.service import ChatRequest, ChatService
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
        from legal_assistant.cli_dossiers import in_process_grounding

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
                from legal_assistant.cli_dossiers import resolve_over_http

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


async def _render(events: AsyncIterator[tuple[str, dict[str, Any]]], language: Language) -> int:
    """Status lines with a spinner (a progress bar while downloading), then the answer as
    it streams. The event source is closed before returning: its cleanup (stopping the
    in-process engines) must run now, not when asyncio.run tears the loop down — where
    it would wait for engine runners that are being cancelled."""
    try:
        return await _render_events(events, language)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def _render_events(
    events: AsyncIterator[tuple[str, dict[str, Any]]], language: Language
) -> int:
    spinner = console.status("…", spinner="dots")
    spinning = False
    bar: DownloadBar | None = None
    sources: list[dict[str, Any]] | None = None  # a grounded turn (ask --dossier)
    try:
        async for event, data in events:
            if event == "status" and data.get("phase") == "downloading":
                if spinning:
                    spinner.stop()
                    spinning = False
                bar = bar or DownloadBar(data["message"].split("...")[0] + "...")
                bar.update(data.get("progress"), data.get("detail", ""))
                continue
            if bar is not None:
                bar.close()
                bar = None
            if event == "status":
                elapsed = data.get("elapsed_s")
                text = data["message"] + (f" [dim]({elapsed:.1f}s)[/dim]" if elapsed else "")
                if data.get("phase") == "ready":
                    if spinning:
                        spinner.stop()
                        spinning = False
                    console.print(text)
                else:
                    spinner.update(text)
                    if not spinning:
                        spinner.start()
                        spinning = True
            elif event == "sources":
                sources = data["sources"]
            elif event == "token":
                if spinning:
                    spinner.stop()
                    spinning = False
                sys.stdout.write(data["content"])
                sys.stdout.flush()
            elif event == "done":
                sys.stdout.write("\n")
                t = data.get("timings") or {}
                bits = [f"{data.get('model')}"]
                if t.get("ttft_s") is not None:
                    bits.append(f"TTFT {t['ttft_s']:.2f}s")
                if t.get("tokens_per_s"):
                    bits.append(f"{t['tokens_per_s']:.1f} tok/s")
                console.print(f"[dim]{' · '.join(bits)}[/dim]")
                if sources is not None:
                    print_sources(sources, data.get("citations"))
                return 0
            elif event == "error":
                if spinning:
                    spinner.stop()
                    spinning = False
                sys.stdout.write("\n") if data.get("partial") else None
                console.print(f"[red]{data.get('message')}[/red]")
                if data.get("detail"):
                    console.print(f"[dim]{data['detail']}[/dim]")
                for line in (data.get("log_tail") or [])[-8:]:
                    console.print(f"[dim]  │ {line}[/dim]")
                return 1
    except LegalAssistantError as err:
        if spinning:
            spinner.stop()
        raise fail(err, language) from err
    finally:
        if spinning:
            spinner.stop()
        if bar is not None:
            bar.close()
    return 1


class DownloadBar:
    """A Rich progress bar for the `downloading` phase: bytes, rate and ETA."""

    def __init__(self, title: str) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("[dim]{task.fields[detail]}[/dim]"),
            console=console,
        )
        self._task = self._progress.add_task(title, total=1.0, detail="")
        self._progress.start()

    def update(self, fraction: float | None, detail: str) -> None:
        self._progress.update(self._task, completed=fraction or 0.0, detail=detail)

    def close(self) -> None:
        self._progress.stop()


# --------------------------------------------------------------------------- models
@models_app.callback(invoke_without_command=True)
def list_models(ctx: typer.Context, url: str = typer.Option(None, help="Backend URL.")) -> None:
    """List the model catalog (what "Paramètres LLM" offers)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()

    async def run() -> dict[str, Any]:
        try:
            return await _get(settings, url, "/api/models")
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


# --------------------------------------------------------------------------- engines
async def _get(settings: Settings, url: str | None, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as c:
        resp = await c.get(f"{backend_url(settings, url)}{path}", headers=auth_headers(settings))
        data: dict[str, Any] = resp.json()
        if resp.status_code >= 400:
            err = data.get("error", {})
            raise LegalAssistantError(err.get("code", "upstream_error"), err.get("detail", ""))
        return data


def _run_cli(coro_factory: Callable[[], Any]) -> Any:
    try:
        return asyncio.run(coro_factory())
    except LegalAssistantError as err:
        raise fail(err) from err


@engines_app.command("status")
def engines_status(url: str = typer.Option(None, help="Backend URL.")) -> None:
    """State, model, port, pid, uptime and memory of every engine of the running backend."""
    settings = load_settings()
    try:
        data = _run_cli(lambda: _get(settings, url, "/api/engines"))
    except httpx.ConnectError:
        console.print(f"No backend running at {backend_url(settings, url)}: no engine runs.")
        raise typer.Exit(0) from None
    table = Table("id", "model", "state", "port", "pid", "uptime", "RSS", "in-flight")
    for e in data["engines"]:
        table.add_row(
            e["id"],
            e["model"],
            e["state"],
            str(e["port"] or ""),
            str(e["pid"] or ""),
            f"{e['uptime_s']:.0f}s" if e.get("uptime_s") else "",
            f"{e['rss_bytes'] / 1024**2:.0f} MB" if e.get("rss_bytes") else "",
            str(e["inflight"]),
        )
    out.print(table)


@engines_app.command("start")
def engines_start(
    model: str = typer.Argument(..., help="Model id, e.g. mlx:smollm2-135m."),
    url: str = typer.Option(None, help="Backend URL."),
) -> None:
    """Start (or reuse) the engine for MODEL, with a live phase spinner. Without a running
    backend, runs the engine in this terminal until Ctrl+C."""
    settings = load_settings()

    async def via_backend() -> int:
        timeout = httpx.Timeout(None, connect=3)
        async with (
            httpx.AsyncClient(timeout=timeout, trust_env=False) as c,
            c.stream(
                "POST",
                f"{backend_url(settings, url)}/api/engines/start",
                json={"model_id": model},
                headers={"Accept": "text/event-stream", **auth_headers(settings)},
            ) as resp,
        ):
            if resp.status_code >= 400:
                await resp.aread()
                err = resp.json()["error"]
                console.print(f"[red]{err['message']}[/red] [dim]{err.get('detail', '')}[/dim]")
                return 1

            async def events() -> AsyncIterator[tuple[str, dict[str, Any]]]:
                async for event, data in iter_sse(resp):
                    if event == "done":
                        console.print(
                            f"[green]{data['model']}[/green] ready: {data['url']} "
                            f"(pid {data['pid']})"
                        )
                        yield "done", {"model": data["model"]}
                    else:
                        yield event, data

            return await _render(events(), "fr")

    try:
        code = asyncio.run(via_backend())
    except httpx.ConnectError:
        code = asyncio.run(_foreground_engine(settings, model))
    raise typer.Exit(code)


async def _foreground_engine(settings: Settings, model: str) -> int:
    from legal_assistant.runtime.supervisor import Supervisor

    console.print(
        "[dim]No backend running: the engine runs in this terminal (Ctrl+C stops it).[/dim]"
    )
    sup = Supervisor(settings)
    sup.reap_orphans()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def events() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        from legal_assistant.api.routes.engines import start_events

        async for ev in start_events(sup, model, "fr"):
            if ev.event == "done":
                console.print(f"[green]{ev.data['model']}[/green] ready: {ev.data['url']}")
                yield "done", {"model": ev.data["model"]}
            else:
                yield ev.event, ev.data

    try:
        code = await _render(events(), "fr")
        if code == 0:
            with contextlib.suppress(asyncio.CancelledError):
                await queue.get()  # until Ctrl+C
        return code
    finally:
        await sup.shutdown()


@engines_app.command("stop")
def engines_stop(
    engine: str = typer.Argument(None, help="Engine id (default: all)."),
    url: str = typer.Option(None, help="Backend URL."),
) -> None:
    """Stop one engine (or all) of the running backend, after its in-flight answers."""
    settings = load_settings()

    async def run() -> list[str]:
        async with httpx.AsyncClient(timeout=None, trust_env=False) as c:
            base = backend_url(settings, url)
            if engine:
                paths = [f"/api/engines/{engine}/stop"]
            else:
                engines = await c.get(f"{base}/api/engines", headers=auth_headers(settings))
                listing = engines.json()
                paths = [
                    f"/api/engines/{e['id']}/stop"
                    for e in listing["engines"]
                    if e["state"] not in ("stopped",)
                ]
            done = []
            for path in paths:
                resp = await c.post(f"{base}{path}", headers=auth_headers(settings))
                if resp.status_code >= 400:
                    err = resp.json()["error"]
                    raise LegalAssistantError(err["code"], err.get("detail", ""))
                done.append(resp.json()["id"])
            return done

    try:
        stopped = _run_cli(run)
    except httpx.ConnectError:
        from legal_assistant.runtime.registry import Registry

        ended = Registry(settings.data_dir / "engines.json").reap_orphans()
        console.print(f"No backend running; ended {len(ended)} leftover engine(s).")
        raise typer.Exit(0) from None
    console.print(f"Stopped: {', '.join(stopped) or 'nothing was running'}")


@engines_app.command("install")
def engines_install(
    engine: str = typer.Argument(..., help="Engine to install: llamacpp."),
    force: bool = typer.Option(False, help="Reinstall even if present."),
) -> None:
    """Install an engine that is kept out of the base install (llama.cpp compiles for a
    few minutes). Idempotent: does nothing when it is already installed."""
    from legal_assistant.runtime.installer import install_llamacpp, is_installed

    if engine != "llamacpp":
        raise fail(f"Unknown engine {engine!r}: only 'llamacpp' is installed this way.")
    settings = load_settings()
    if is_installed(settings.engines_dir, "llamacpp") and not force:
        console.print("llama.cpp is already installed.")
        return
    started = time.monotonic()
    with console.status("Installing llama.cpp (compiling, a few minutes)…") as spinner:

        def on_line(line: str) -> None:
            elapsed = time.monotonic() - started
            spinner.update(f"Installing llama.cpp — {elapsed:.0f}s — [dim]{line[:90]}[/dim]")

        try:
            python = asyncio.run(install_llamacpp(settings.engines_dir, on_line, force=force))
        except LegalAssistantError as err:
            raise fail(err, "en") from err
    console.print(
        f"[green]llama.cpp installed[/green] ({python}, {time.monotonic() - started:.0f}s)"
    )


@engines_app.command("logs")
def engines_logs(
    engine: str = typer.Argument(..., help="Engine id (see `engines status`)."),
    tail: int = typer.Option(50, "--tail", "-n"),
    url: str = typer.Option(None, help="Backend URL."),
) -> None:
    """The engine's last output lines."""
    settings = load_settings()
    try:
        data = _run_cli(lambda: _get(settings, url, f"/api/engines/{engine}/logs?tail={tail}"))
    except httpx.ConnectError:
        raise fail(f"No backend running at {backend_url(settings, url)}") from None
    for line in data["lines"]:
        out.print(line, markup=False, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
