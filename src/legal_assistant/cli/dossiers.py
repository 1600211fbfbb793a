"""`legal-assistant dossiers create | list | add | search | rm`, against the running backend
(like `engines`): the backend owns the database, the indexes and the ingestion jobs, so
the CLI only talks HTTP. `add` uploads the files, then follows the dossier's progress
events with a Rich progress bar per document until each is ready or failed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table

from legal_assistant.cli.common import auth_headers, backend_url, console, fail, load_settings, out
from legal_assistant.config import Settings
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.sse_client import iter_sse

dossiers_app = typer.Typer(help="Dossiers: your documents, searched and cited to the page.")

_TERMINAL = ("ready", "failed")


class Backend:
    """The running backend's dossier API (errors raised as LegalAssistantError)."""

    def __init__(self, settings: Settings, url: str | None, language: Language) -> None:
        self.base = backend_url(settings, url)
        self.headers = {**auth_headers(settings), "Accept-Language": language}
        self.language = language

    def client(self, timeout: float | None = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base,
            headers=self.headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            trust_env=False,
        )

    @staticmethod
    def check(resp: httpx.Response) -> Any:
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            code = err.get("code", "upstream_error")
            message = err.get("message")
            try:
                raise LegalAssistantError(
                    code, err.get("detail", ""), message_fr=message, message_en=message
                )
            except ValueError:  # a code this client does not know
                raise LegalAssistantError(
                    "upstream_error", str(message), message_fr=message, message_en=message
                ) from None
        return data

    async def resolve(self, c: httpx.AsyncClient, dossier: str) -> dict[str, Any]:
        """A dossier by id, or by its exact name (case-insensitive)."""
        listing: list[dict[str, Any]] = self.check(await c.get("/api/dossiers"))["dossiers"]
        dossier_id = _pick(listing, dossier)
        return next(d for d in listing if d["id"] == dossier_id)


def _run(settings: Settings, url: str | None, language: Language, coro: Any) -> Any:
    try:
        return asyncio.run(coro(Backend(settings, url, language)))
    except httpx.ConnectError:
        raise fail(
            f"No backend running at {backend_url(settings, url)}: start it with "
            "`legal-assistant serve`."
        ) from None
    except LegalAssistantError as err:
        raise fail(err, language) from err


def _lang(lang: str) -> Language:
    return "en" if lang == "en" else "fr"


URL = typer.Option(None, help="Backend URL.")
LANG = typer.Option("fr", "--lang", "-l", help="fr or en (messages from the backend).")
DOSSIER = typer.Option(..., "--dossier", "-d", help="Dossier id or name.")
FILES = typer.Argument(..., help="PDF, DOCX, ODT, RTF, TXT, Markdown, HTML files.")


@dossiers_app.command("create")
def create(
    name: str = typer.Argument(..., help="Name of the dossier."), url: str = URL, lang: str = LANG
) -> None:
    """Create a dossier; prints its id."""
    settings = load_settings()

    async def run(api: Backend) -> dict[str, Any]:
        async with api.client() as c:
            data: dict[str, Any] = api.check(await c.post("/api/dossiers", json={"name": name}))
            return data

    dossier = _run(settings, url, _lang(lang), run)
    out.print(f"{dossier['id']}  {escape(dossier['name'])}")


@dossiers_app.command("list")
def list_(url: str = URL, lang: str = LANG) -> None:
    """The dossiers, most recently active first."""
    settings = load_settings()

    async def run(api: Backend) -> list[dict[str, Any]]:
        async with api.client() as c:
            data: list[dict[str, Any]] = api.check(await c.get("/api/dossiers"))["dossiers"]
            return data

    table = Table()
    table.add_column("id", no_wrap=True)  # copied into other commands: never folded
    table.add_column("name")
    table.add_column("documents", justify="right")
    table.add_column("updated", no_wrap=True)
    for d in _run(settings, url, _lang(lang), run):
        table.add_row(d["id"], escape(d["name"]), str(d["documents"]), d["updated_at"][:19])
    out.print(table)


@dossiers_app.command("rm")
def remove(
    dossier: str = typer.Argument(..., help="Dossier id or name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    url: str = URL,
    lang: str = LANG,
) -> None:
    """Delete a dossier with its documents (files, passages, vectors) and conversations."""
    settings = load_settings()

    async def run(api: Backend) -> dict[str, Any]:
        async with api.client() as c:
            found = await api.resolve(c, dossier)
            if not yes and not typer.confirm(
                f"Delete {found['name']!r} and its {found['documents']} document(s)?"
            ):
                raise typer.Exit(1)
            api.check(await c.delete(f"/api/dossiers/{found['id']}"))
            return found

    found = _run(settings, url, _lang(lang), run)
    console.print(f"Deleted {escape(found['name'])} ({found['id']})")


@dossiers_app.command("search")
def search(
    question: str = typer.Argument(..., help="What to look for (a natural question works)."),
    dossier: str = DOSSIER,
    k: int = typer.Option(5, "-k", min=1, max=50, help="How many passages."),
    url: str = URL,
    lang: str = LANG,
) -> None:
    """Hybrid search (keywords + embeddings) in a dossier: passages with file and page."""
    settings = load_settings()

    async def run(api: Backend) -> dict[str, Any]:
        async with api.client(timeout=120) as c:
            found = await api.resolve(c, dossier)
            params: dict[str, str | int] = {"q": question, "k": k}
            data: dict[str, Any] = api.check(
                await c.get(f"/api/dossiers/{found['id']}/search", params=params)
            )
            return data

    data = _run(settings, url, _lang(lang), run)
    if not data["results"]:
        out.print("No passage found." if lang == "en" else "Aucun passage trouvé.")
    for n, r in enumerate(data["results"], start=1):
        where = f"§ {r['paragraph']}" if r.get("paragraph") else f"p. {r['page']}"
        label = f" — {escape(r['label'])}" if r.get("label") else ""
        out.print(
            f"[bold][{n}][/bold] {escape(r['filename'])}, {where}{label} "
            f"[dim](score {r['score']:.3f})[/dim]"
        )
        out.print(_highlighted(r["text"], r.get("highlights") or []), soft_wrap=True)
    if data["results"] and not data["relevant"]:
        out.print("[dim]None of these is clearly relevant.[/dim]")


def _highlighted(text: str, spans: list[list[int]]) -> str:
    parts, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        parts += [escape(text[last:start]), f"[bold yellow]{escape(text[start:end])}[/]"]
        last = end
    parts.append(escape(text[last:]))
    return "".join(parts)


@dossiers_app.command("add")
def add(
    files: list[Path] = FILES,
    dossier: str = DOSSIER,
    wait: bool = typer.Option(True, help="Follow the ingestion until every file is done."),
    url: str = URL,
    lang: str = LANG,
) -> None:
    """Upload files into a dossier and show their ingestion (extraction, embedding)."""
    settings = load_settings()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise fail(f"Not a file: {', '.join(missing)}")
    code = _run(settings, url, _lang(lang), lambda api: _add(api, dossier, files, wait))
    raise typer.Exit(code)


@contextlib.contextmanager
def _opened(files: list[Path]) -> Iterator[list[tuple[str, Any]]]:
    with contextlib.ExitStack() as stack:
        yield [("file", (f.name, stack.enter_context(f.open("rb")))) for f in files]


async def _add(api: Backend, dossier: str, files: list[Path], wait: bool) -> int:
    async with api.client(timeout=None) as c:
        found = await api.resolve(c, dossier)
        base = f"/api/dossiers/{found['id']}"
        with _opened(files) as parts:
            docs = api.check(await c.post(f"{base}/documents", files=parts))["documents"]
        for d in docs:
            if d.get("duplicate"):
                console.print(f"[dim]{escape(d['filename'])}: already in the dossier[/dim]")
        if not wait:
            for d in docs:
                console.print(f"{d['id']}  {escape(d['filename'])}  {d['status']}")
            return 0
        final = await _follow(c, base, docs)
    failed = 0
    for d in docs:
        state = final.get(d["id"], d)
        name = escape(d["filename"])
        if state["status"] == "ready":
            console.print(
                f"[green]✓[/green] {name}: {state.get('pages')} page(s), "
                f"{state.get('passages')} passage(s)"
            )
        else:
            failed += 1
            error = state.get("error") or {}
            console.print(f"[red]✗ {name}: {escape(str(error.get('message') or ''))}[/red]")
    return 1 if failed else 0


async def _follow(c: httpx.AsyncClient, base: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Progress bars from the dossier's events until every document is ready or failed;
    the final state of each (from the documents API)."""
    pending = {d["id"] for d in docs if d["status"] not in _TERMINAL}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("[dim]{task.fields[stage]}[/dim]"),
        console=console,
    )
    tasks: dict[str, TaskID] = {
        d["id"]: progress.add_task(escape(d["filename"]), total=1.0, stage=d["status"])
        for d in docs
        if d["id"] in pending
    }
    if pending:
        with progress:
            async with c.stream("GET", f"{base}/events") as resp:
                Backend.check(resp) if resp.status_code >= 400 else None
                async for event, data in iter_sse(resp):
                    doc_id = data.get("document_id")
                    if event != "document" or doc_id not in tasks:
                        continue
                    stage = data["status"]
                    if data.get("total") and stage in ("extracting", "embedding"):
                        stage = f"{stage} {data['done']}/{data['total']}"
                    progress.update(tasks[doc_id], completed=data["progress"], stage=stage)
                    if data["status"] in _TERMINAL or data["status"] == "deleted":
                        pending.discard(doc_id)
                    if not pending:
                        break
    listing = Backend.check(await c.get(f"{base}/documents"))["documents"]
    return {d["id"]: d for d in listing}


def print_sources(sources: list[dict[str, Any]], citations: list[int] | None) -> None:
    """After a grounded `ask`: the passages the answer cites (or all that were sent)."""
    cited = set(citations or [])
    for s in sources:
        if cited and s["n"] not in cited:
            continue
        where = f"§ {s['paragraph']}" if s.get("paragraph") else f"p. {s['page']}"
        label = f" — {escape(s['label'])}" if s.get("label") else ""
        mark = "[bold]" if s["n"] in cited else "[dim]"
        console.print(f"{mark}[{s['n']}] {escape(s['filename'])}, {where}{label}[/]")


# --------------------------------------------------------------------------- ask --dossier
async def resolve_over_http(
    c: httpx.AsyncClient, url: str, headers: dict[str, str], dossier: str
) -> str:
    """The id of a dossier named by id or name, asked of the running backend."""
    resp = await c.get(f"{url}/api/dossiers", headers=headers)
    listing = Backend.check(resp)["dossiers"]
    return _pick(listing, dossier)


def _pick(listing: list[dict[str, Any]], dossier: str) -> str:
    matches = [d for d in listing if d["id"] == dossier] or [
        d for d in listing if d["name"].casefold() == dossier.casefold()
    ]
    if len(matches) != 1:
        raise LegalAssistantError(
            "not_found",
            f"{len(matches)} dossiers match {dossier!r}",
            message_fr=f"❌ Dossier introuvable ou ambigu : {dossier}",
            message_en=f"❌ Dossier not found or ambiguous: {dossier}",
        )
    return str(matches[0]["id"])


async def in_process_grounding(
    settings: Settings, db: Any, supervisor: Any, dossier: str
) -> tuple[str, Any, Any]:
    """For `ask --dossier` without a backend: the dossier's id, a Grounder over its index
    (read only: ingestion stays the backend's job), and the library to close."""
    from legal_assistant.chat.grounding import Grounder
    from legal_assistant.documents.files import DossierFiles
    from legal_assistant.documents.library import DossierLibrary
    from legal_assistant.store.dossiers import list_dossiers

    listing = [d.model_dump() for d in await list_dossiers(db)]
    dossier_id = _pick(listing, dossier)
    library = DossierLibrary(settings, db, supervisor, DossierFiles(settings.data_dir))
    return dossier_id, Grounder(settings, db, library), library
