"""How the CLI shows a stream of chat or engine events: status lines with a spinner, a
progress bar while a model downloads, then the answer as it streams."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

from legal_assistant.cli.checks import print_checks
from legal_assistant.cli.common import console, fail
from legal_assistant.cli.dossiers import print_sources
from legal_assistant.errors import Language, LegalAssistantError


async def render(events: AsyncIterator[tuple[str, dict[str, Any]]], language: Language) -> int:
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
    extract: dict[str, Any] | None = None  # its extractive answer, when the model failed
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
            elif event == "extract":
                extract = data
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
                print_checks(data, extract, language)
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
