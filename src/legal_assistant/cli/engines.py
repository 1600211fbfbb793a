"""`legal-assistant engines …`: status, start, stop, install and logs of the supervised
inference engines, through the running backend (or, without one, in this terminal)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import typer
from rich.table import Table

from legal_assistant.cli.common import (
    auth_headers,
    backend_url,
    console,
    fail,
    get_json,
    load_settings,
    out,
    run_cli,
)
from legal_assistant.cli.render import render
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.sse_client import iter_sse

engines_app = typer.Typer(help="Supervised inference engines (start, status, stop, logs).")


@engines_app.command("status")
def engines_status(url: str = typer.Option(None, help="Backend URL.")) -> None:
    """State, model, port, pid, uptime and memory of every engine of the running backend."""
    settings = load_settings()
    try:
        data = run_cli(lambda: get_json(settings, url, "/api/engines"))
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

            return await render(events(), "fr")

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
        code = await render(events(), "fr")
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
        stopped = run_cli(run)
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
        data = run_cli(lambda: get_json(settings, url, f"/api/engines/{engine}/logs?tail={tail}"))
    except httpx.ConnectError:
        raise fail(f"No backend running at {backend_url(settings, url)}") from None
    for line in data["lines"]:
        out.print(line, markup=False, highlight=False)
