"""`legal-assistant doctor`: what the troubleshooting guide asks you to check, checked.

One row per check, each failing one with its fix; the exit code is 0 only when nothing
failed and the default model really answered a question (its engine started here, in a
private data directory, so a running backend's engines are never touched).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import httpx
import typer
from rich.console import Console
from rich.table import Table

from legal_assistant.catalog import parse_model_id
from legal_assistant.cli.common import load_settings
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime import blas
from legal_assistant.runtime.bundled import (
    VARIANTS,
    BundledModelError,
    bundled_gguf_path,
    bundled_model_dir,
    default_models_dir,
)

if TYPE_CHECKING:
    from legal_assistant.providers import ChatProvider

Status = Literal["ok", "warn", "fail", "info"]
_GB = 1024**3


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def dir_size(path: Path) -> int:
    """Bytes on disk under `path`, symlinks not followed (the HF cache links its blobs)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


def check_mlx_command(settings: Settings) -> Check:
    """The configured `mlx_command` runs (`--help`): the engine can be spawned at all."""
    argv = [*settings.mlx_command, "--help"]
    fix = "uv sync (installs mlx-lm), or correct LEGAL_ASSISTANT_MLX_COMMAND"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        return Check("mlx-lm", "fail", f"command not found: {argv[0]}", fix)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("mlx-lm", "fail", f"{' '.join(argv)}: {e}", fix)
    if done.returncode != 0 or "--model" not in done.stdout:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        return Check("mlx-lm", "fail", f"{' '.join(settings.mlx_command)}: {last[:200]}", fix)
    return Check("mlx-lm", "ok", " ".join(settings.mlx_command))


def check_bundled(settings: Settings, choice: blas.BlasChoice) -> Check:
    try:
        bundled_gguf_path()
    except BundledModelError as e:
        return Check("bundled model", "fail", str(e), "uv sync")
    models = settings.models_dir or default_models_dir()
    parts = []
    for variant in VARIANTS:
        path = bundled_model_dir(models, variant)
        if (path / "config.json").is_file():
            parts.append(f"{variant} ✓ ({dir_size(path) / 1e6:.0f} MB)")
        else:
            parts.append(f"{variant} –")
    runs = choice.variant
    ready = (bundled_model_dir(models, runs) / "config.json").is_file()
    note = "" if ready else " (converted on first use, a few seconds)"
    return Check("bundled model", "ok", f"{', '.join(parts)}; the engine runs {runs}{note}")


def check_blas(choice: blas.BlasChoice) -> Check:
    if sys.platform != "linux":
        return Check("BLAS for MLX", "ok", choice.reason)
    if choice.fast:
        return Check("BLAS for MLX", "ok", choice.reason)
    return Check("BLAS for MLX", "warn", choice.reason, blas.INSTALL_HINT)


def check_llamacpp(settings: Settings) -> Check:
    from legal_assistant.runtime.installer import is_installed

    if is_installed(settings.engines_dir, "llamacpp"):
        return Check("llama.cpp engine", "ok", "installed")
    return Check(
        "llama.cpp engine",
        "info",
        "not installed (only needed for llamacpp: models)",
        "legal-assistant engines install llamacpp",
    )


def check_disk(settings: Settings) -> list[Check]:
    rows = []
    places = {"models cache": settings.models_dir or default_models_dir()}
    places["Hugging Face cache"] = settings.resolved_hf_home
    for label, path in places.items():
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        detail = f"{free / _GB:.1f} GB free at {path}"
        fix = "free some space, or `legal-assistant models cache` / `models remove ID`"
        if free < 1 * _GB:
            rows.append(Check(f"disk ({label})", "fail", detail, fix))
        elif free < 5 * _GB:
            rows.append(Check(f"disk ({label})", "warn", detail, fix))
        else:
            rows.append(Check(f"disk ({label})", "ok", detail))
    return rows


def check_data_dir(settings: Settings) -> Check:
    from legal_assistant.store import DataDirLock

    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except LegalAssistantError as err:
        if err.code == "data_dir_locked":
            return Check(
                "data dir",
                "fail",
                f"locked: {err.detail} (a backend is running)",
                "stop that backend, or use another LEGAL_ASSISTANT_DATA_DIR",
            )
        return Check("data dir", "fail", f"{err.detail}", "check its permissions and free space")
    try:
        with tempfile.NamedTemporaryFile(dir=settings.data_dir, prefix=".doctor-"):
            pass
    except OSError as e:
        return Check("data dir", "fail", f"not writable: {e}", "check its permissions")
    finally:
        lock.release()
    return Check("data dir", "ok", f"{settings.data_dir} (writable, not locked)")


def check_port(settings: Settings) -> Check:
    from legal_assistant.runtime.ports import port_is_free, port_owner

    where = f"{settings.host}:{settings.port}"
    try:
        free = port_is_free(settings.port, settings.host)
    except OSError as e:
        return Check(
            "backend port", "fail", f"cannot bind {where}: {e}", "check LEGAL_ASSISTANT_HOST"
        )
    if free:
        return Check("backend port", "ok", f"{where} is free")
    return Check(
        "backend port",
        "fail",
        f"{where} is used by {port_owner(settings.port)}",
        f"stop it, or serve on another port (--port {settings.port + 1})",
    )


async def check_ollama(settings: Settings) -> Check:
    needed = settings.default_model.startswith("ollama:")
    try:
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            resp = await client.get(f"{settings.ollama_url.rstrip('/')}/api/version")
            version = resp.json().get("version", "?")
    except (httpx.HTTPError, ValueError, AttributeError):
        status: Status = "fail" if needed else "info"
        return Check(
            "Ollama",
            status,
            f"not reachable at {settings.ollama_url}" + ("" if needed else " (optional)"),
            "start it: ollama serve" if needed else "",
        )
    return Check("Ollama", "ok", f"{settings.ollama_url} (version {version})")


def check_offline() -> Check:
    from legal_assistant.runtime.downloads import hub_offline

    if hub_offline():
        return Check("offline mode", "info", "on: only downloaded models and the bundled one")
    return Check("offline mode", "info", "off: models are downloaded on first use")


async def _ask(provider: ChatProvider, model: str) -> str:
    """One short question, answered in full (a dozen tokens)."""
    from legal_assistant.chat.prompts import system_prompt
    from legal_assistant.providers import TokenDelta

    messages = [
        {"role": "system", "content": system_prompt("en")},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    text = ""
    stream = provider.stream_chat(messages, model=model, max_tokens=12, temperature=0.0)
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, TokenDelta):
                text += item.content
    return text


async def _answer(settings: Settings, private: Path) -> tuple[str, float | None]:
    """The default model's answer, and when a supervised engine is involved, the seconds
    it took to be ready."""
    from legal_assistant.providers import OllamaProvider, OpenAICompatProvider
    from legal_assistant.runtime.supervisor import Supervisor

    ref = parse_model_id(settings.default_model)
    if ref.provider == "ollama":
        async with OllamaProvider(settings.ollama_url) as ollama:
            return await _ask(ollama, ref.name), None
    if not ref.managed:
        endpoint = next((e for e in settings.openai_endpoints if ref.name in e.models), None)
        if endpoint is None:
            raise LegalAssistantError("model_not_found", f"no endpoint serves {ref.name}")
        remote = OpenAICompatProvider(endpoint.base_url, api_key=endpoint.api_key)
        async with remote:
            return await _ask(remote, ref.name), None
    t0 = time.monotonic()
    sup = Supervisor(settings.model_copy(update={"data_dir": private}))
    try:
        async with sup.lease(ref) as lease:
            up = time.monotonic() - t0
            engine = lease.engine
            async with OpenAICompatProvider(f"{engine.base_url}/v1", read_timeout=120) as local:
                return await _ask(local, engine.served_model or ref.name), up
    finally:
        await sup.shutdown()


async def check_answer(settings: Settings) -> Check:
    """Ask the default model one short question. A supervised one is started here with a
    private, temporary data dir: a running backend's engines and registry stay untouched."""
    name = "default model answers"
    model = settings.default_model
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="legal-assistant-doctor-") as private:
        try:
            text, up = await _answer(settings, Path(private))
        except LegalAssistantError as err:
            detail = f"{model}: {err.message('en')} {err.detail}".strip()
            tail = f" — {err.log_tail[-1]}" if err.log_tail else ""
            return Check(name, "fail", (detail + tail)[:400], _fix_for(err))
    if not text.strip():
        return Check(name, "fail", f"{model}: empty answer", "legal-assistant engines logs <id>")
    total = time.monotonic() - t0
    started = f"engine up in {up:.1f}s, " if up is not None else ""
    return Check(name, "ok", f"{model}: {text.strip()[:60]!r} ({started}answer in {total:.1f}s)")


def _fix_for(err: LegalAssistantError) -> str:
    return {
        "engine_not_installed": "uv sync, or correct LEGAL_ASSISTANT_MLX_COMMAND",
        "model_not_found": "check LEGAL_ASSISTANT_DEFAULT_MODEL (legal-assistant models)",
        "port_busy": "LEGAL_ASSISTANT_MLX_PORT=0 lets the OS pick a free port",
        "timeout": "the machine may be overloaded; raise LEGAL_ASSISTANT_LOAD_TIMEOUT_S",
    }.get(err.code, "legal-assistant engines logs <id>, or docs/configuration.md")


async def run_checks(settings: Settings) -> list[Check]:
    choice = await asyncio.to_thread(blas.choose, settings.mlx_blas)
    rows = [await asyncio.to_thread(check_mlx_command, settings)]
    rows.append(check_bundled(settings, choice))
    rows.append(check_blas(choice))
    rows.append(check_llamacpp(settings))
    rows += check_disk(settings)
    rows.append(check_data_dir(settings))
    rows.append(check_port(settings))
    rows.append(await check_ollama(settings))
    rows.append(check_offline())
    rows.append(await check_answer(settings))
    return rows


def exit_code(rows: list[Check]) -> int:
    """0 only when nothing failed and the default model answered."""
    answered = any(r.name == "default model answers" and r.status == "ok" for r in rows)
    return 0 if answered and not any(r.status == "fail" for r in rows) else 1


_MARK = {
    "ok": "[green]✓[/green]",
    "warn": "[yellow]![/yellow]",
    "fail": "[red]✗[/red]",
    "info": "·",
}


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check mlx-lm, the bundled model, BLAS, engines, disk, data dir, port, Ollama, and
    that the default model answers. Exit code 0 only when it does and nothing failed."""
    settings = load_settings()
    rows = asyncio.run(run_checks(settings))
    code = exit_code(rows)
    if as_json:
        print(json.dumps({"checks": [asdict(r) for r in rows], "exit_code": code}, indent=2))
        raise typer.Exit(code)
    table = Table("", "check", "result", "fix", show_lines=False)
    for r in rows:
        table.add_row(_MARK[r.status], r.name, r.detail, r.fix)
    out = Console()
    out.print(table)
    failed = [r.name for r in rows if r.status == "fail"]
    if failed:
        out.print(f"[red]Failing: {', '.join(failed)}[/red]")
    else:
        out.print("[green]The default model answers: Legal Assistant is ready.[/green]")
    raise typer.Exit(code)
