"""Fault: the engine dies.

* SIGKILL of the REAL mlx_lm.server in the middle of a long answer streamed through the
  chat API: the client is told (`event: error`, code `engine_crashed`) within 2 s, the
  words already streamed are saved flagged partial, and the next request starts a new
  engine process and answers in full.
* An engine that dies at every start (the fake engine's `crash_at_start`, a stand-in of
  an mlx_lm.server that cannot load): repeated requests through the chat API and the
  /v1 gateway get a clean classified error at once, the spawn count stays bounded by the
  crash-loop backoff, and the error carries the failed-start count and the engine's last
  output lines. Once the engine is fixed, the next request after the backoff is served.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from reliability_helpers import fake_app_settings, serve_app, spawn_count

from app_harness import BUNDLED, chat, fake_model_dir, iter_events, pid_gone, poll
from legal_assistant.config import Settings

QUESTION = "Explique en détail, article par article, le droit français des contrats."


async def test_real_mlx_engine_sigkilled_mid_answer(
    settings: Settings, bundled_model: Path
) -> None:
    async with asyncio.timeout(150), serve_app(settings) as app:
        tokens: list[str] = []
        meta: dict[str, Any] = {}
        error: dict[str, Any] | None = None
        killed_at: float | None = None
        engine_pid: int | None = None
        after_kill: list[str] = []
        async with app.client.stream(
            "POST",
            "/api/chat/stream",
            json={"message": QUESTION, "max_tokens": 200, "temperature": 0.0},
        ) as resp:
            assert resp.status_code == 200
            async for event, data in iter_events(resp):
                if event == "meta":
                    meta = data
                elif event == "token":
                    tokens.append(data["content"])
                    if killed_at is not None:
                        after_kill.append(data["content"])
                    elif len(tokens) == 3:
                        engine = await app.engine(BUNDLED)
                        assert engine is not None and engine["state"] == "ready"
                        engine_pid = engine["pid"]
                        assert engine_pid is not None and engine["inflight"] == 1
                        os.kill(engine_pid, signal.SIGKILL)
                        killed_at = time.monotonic()
                elif event == "error":
                    error = data
                    error_after = time.monotonic() - (killed_at or 0.0)
                    break
                elif event == "done":
                    raise AssertionError(f"the answer completed despite the kill: {data}")
        assert killed_at is not None and engine_pid is not None, "no 3 tokens streamed"
        assert error is not None, "the stream ended without an error event"
        assert error["code"] == "engine_crashed", error
        assert error_after < 2.0, f"error reported {error_after:.2f}s after the kill"
        assert error["partial"] is True
        # A token or two may have been in flight in the socket when the engine died.
        assert len(after_kill) <= 5

        conv = await app.conversation(meta["conversation_id"])
        user, answer = conv["messages"]
        assert user["content"] == QUESTION
        assert answer["id"] == error["message_id"]
        assert answer["partial"] is True and answer["error_code"] == "engine_crashed"
        assert answer["content"] == "".join(tokens) and answer["content"]

        # The supervisor saw the death (no request needed): FAILED, process reaped.
        await poll(lambda: pid_gone(engine_pid), timeout=5, what="the killed engine reaped")
        engine = await app.engine(BUNDLED)
        assert engine is not None and engine["state"] == "failed" and engine["pid"] is None

        # The next request (here through the /v1 gateway, with a one-word prompt to keep
        # the CPU prefill short) starts a new engine process and completes.
        resp = await app.client.post(
            "/v1/completions",
            json={"model": BUNDLED, "prompt": "Bonjour", "max_tokens": 3, "temperature": 0.0},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["choices"][0]["text"]
        engine = await app.engine(BUNDLED)
        assert engine is not None and engine["state"] == "ready"
        assert engine["pid"] not in (None, engine_pid)
        assert engine["starts"] == 2 and engine["inflight"] == 0
        assert app.state.supervisor.registry.entries()[0].pid == engine["pid"]


async def _gateway_error(client: httpx.AsyncClient, model: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
    )
    return resp.status_code, resp.json()


async def test_crash_loop_gets_fast_classified_errors_and_bounded_spawns(tmp_path: Path) -> None:
    spawns = tmp_path / "spawns.log"
    gate = tmp_path / "gate"
    path = fake_model_dir(
        tmp_path, "crashy", crash_at_start=3, spawn_log=str(spawns), start_gate=str(gate)
    )
    model = f"mlx:{path}"
    # Room for all 6 at once (an MLX engine runs 4 by default; the rest would queue in
    # admission, never reaching the start this test is about).
    settings = fake_app_settings(tmp_path, mlx_parallel=6)
    async with asyncio.timeout(60), serve_app(settings) as app:
        t0 = time.monotonic()
        # A burst of 6 concurrent requests shares the first (failing) start. The engine
        # crashes only once all 6 have joined it: under load, a request arriving after
        # the failure would rightly start it again (the backoff begins at the 2nd failure).
        burst_tasks = [
            asyncio.create_task(chat(app.client, message="Bonjour", model_id=model, timeout=15))
            for _ in range(6)
        ]

        async def all_joined() -> bool:
            engine = await app.engine(model)
            return engine is not None and engine["waiting"] == 6

        await poll(all_joined, timeout=20, interval=0.05, what="6 callers to join the start")
        gate.touch()
        burst = await asyncio.gather(*burst_tasks)
        assert spawn_count(spawns) == 1
        for turn in burst:
            assert turn.names[0] == "meta" and turn.names[-1] == "error", turn.events
            err = turn.one("error")
            assert err["code"] == "engine_crashed" and "exit code 3" in err["detail"], err
            assert any("crash_at_start" in line for line in err["log_tail"]), err

        # Then one request after another, alternating chat API and gateway.
        codes: list[str] = []
        details: list[str] = []
        for i in range(12):
            t1 = time.monotonic()
            if i % 2 == 0:
                turn = await chat(app.client, message="Encore", model_id=model, timeout=15)
                assert turn.names[-1] == "error", turn.events
                err = turn.one("error")
                codes.append(err["code"])
                details.append(err["detail"])
                if "failed starts" in err["detail"]:
                    # The backoff answer still carries the engine's last output lines.
                    assert any("crash_at_start" in ln for ln in err["log_tail"]), err
            else:
                status, body = await _gateway_error(app.client, model)
                assert status == 503, body
                codes.append(body["error"]["code"])
                details.append(body["error"]["message"])
            assert time.monotonic() - t1 < 3.0, "a crash-looping engine made a request wait"
        elapsed = time.monotonic() - t0

        assert set(codes) == {"engine_crashed"}, codes
        # After the second failure the engine backs off: requests get the last error with
        # the failed-start count instead of a new spawn each.
        backoff = [d for d in details if "failed starts in a row" in d]
        assert len(backoff) >= 8, details
        # Spawns: 2 at once, then one per backoff window (1 s, 2 s, 4 s ...) at most.
        allowed = 2 + math.floor(math.log2(elapsed + 1))
        assert 2 <= spawn_count(spawns) <= allowed, (spawn_count(spawns), elapsed)
        engine = await app.engine(model)
        assert engine is not None and engine["state"] == "failed"
        assert engine["failed_starts"] == spawn_count(spawns)
        assert engine["pid"] is None and app.state.supervisor.registry.entries() == []

        # The engine is fixed (the model works again): once the backoff window has passed,
        # the next request starts it and is served.
        fake_model_dir(tmp_path, "crashy", spawn_log=str(spawns), tokens=3)
        before = spawn_count(spawns)

        async def served() -> bool:
            turn = await chat(app.client, message="Enfin", model_id=model, timeout=15)
            return turn.names[-1] == "done"

        await poll(served, timeout=20, interval=0.25, what="the fixed engine to serve")
        engine = await app.engine(model)
        assert engine is not None and engine["state"] == "ready" and engine["failed_starts"] == 0
        assert spawn_count(spawns) == before + 1
