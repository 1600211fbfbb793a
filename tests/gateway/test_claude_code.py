"""Claude Code itself (npm `@anthropic-ai/claude-code`, installed by
`scripts/ensure-claude-code`, which `make test` runs) headless (`-p`) against the
backend's Anthropic API, the model being the scripted engine (tests/fakes/
scripted_engine.py, a stand-in for a tool-calling `llama-server --jinja`) configured as
an `openai:` endpoint: the model asks to read a file, Claude Code runs its Read tool,
sends the result back, and prints the final answer built from the file. With the
bundled model (no tools in its template) Claude Code prints the gateway's 400, and
nothing starts.

Claude Code runs offline: a temporary HOME, no telemetry, no auto-update, no
non-essential traffic; its only server is the backend (with an API key, sent as
`x-api-key`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app_harness import load_fake
from legal_assistant.config import OpenAIEndpoint, Settings

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"
FACT = "Le loyer mensuel du bail Dupont est de 812 euros, payable le 5 du mois."


def claude_env(home: Path, base_url: str, api_key: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        # Background tasks (titles, summaries) use the "small fast" model: ours too.
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "openai:scripted",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "32768",
    }


async def run(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    try:
        return await asyncio.wait_for(proc.communicate(), 180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def test_claude_code_reads_a_file_through_the_gateway(
    tmp_path: Path, serve_gateway: Callable[..., Any], gw_fake_settings: Callable[..., Settings]
) -> None:
    assert CLAUDE.is_file(), "Claude Code is not installed: run scripts/ensure-claude-code"
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    notes = work / "notes.txt"
    notes.write_text(FACT + "\n", encoding="utf-8")
    prompt = f'Que dit le fichier ?\ncall: Read {{"file_path": "{notes}"}}'
    with load_fake("scripted_engine").ScriptedEngine(["scripted"]) as engine:
        endpoint = OpenAIEndpoint(name="scripted", base_url=engine.url, models=["scripted"])
        settings = gw_fake_settings(openai_endpoints=[endpoint], api_key="cle-de-test")
        async with serve_gateway(settings) as gw:
            proc = await asyncio.create_subprocess_exec(
                str(CLAUDE),
                "-p",
                prompt,
                "--model",
                "openai:scripted",
                "--allowedTools",
                "Read",
                cwd=work,
                env=claude_env(home, gw.url, "cle-de-test"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await run(proc)
            # A model whose template has no tools: Claude Code shows the gateway's reason.
            refused = await asyncio.create_subprocess_exec(
                str(CLAUDE),
                "-p",
                "Bonjour",
                "--model",
                "mlx:smollm2-135m",
                cwd=work,
                env=claude_env(home, gw.url, "cle-de-test"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            refused_out, _ = await run(refused)
            engines = await gw.client.get(
                "/api/engines", headers={"Authorization": "Bearer cle-de-test"}
            )
            assert engines.json()["engines"] == []  # nothing was started
    assert refused.returncode != 0
    assert "400 mlx:smollm2-135m cannot call tools" in refused_out.decode()
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, (stdout, stderr[-2000:])
    # The final answer is the engine's text built from the tool result: the file's line.
    assert stdout.startswith("Résultats : Read → "), stdout
    assert FACT in stdout
    # The window given (docs/gateway.md): no "assumes a context window of 1m tokens".
    assert "assumes a context window" not in stderr, stderr[-2000:]
    # What reached the engine: a streamed turn that called Read with the path, then the
    # result under the same call id.
    calls = [
        (m["tool_calls"][0]["id"], m["tool_calls"][0]["function"])
        for r in engine.requests
        for m in r["messages"]
        if m["role"] == "assistant" and m.get("tool_calls")
    ]
    assert calls, engine.requests[-1]["messages"]
    call_id, function = calls[-1]
    assert function["name"] == "Read" and str(notes) in function["arguments"]
    last = engine.requests[-1]
    assert last["stream"] is True and any(t["function"]["name"] == "Read" for t in last["tools"])
    results = [m for m in last["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == [call_id]
    assert FACT in results[0]["content"]
