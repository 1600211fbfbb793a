"""Several people on one engine (issue 21): the real app and its `/v1` gateway in front of
one MLX engine and one llama-server (bundled SmolLM2), side by side in one run.

1. Batching: each of 4 prompts alone (serially), then the 4 at once from 4 users, then
   N users x M requests at once — wall time vs one answer and vs serial.
   Goal: 4 concurrent answers <= 2.0x one.
2. Fairness: the time to first token (TTFT) of Bob's question alone, then while Alice's
   burst of 8 long answers runs — with first-come-first-served admission
   (FAIR_ADMISSION=false, the behaviour before) and with fair admission (per-user queues,
   round-robin, per-user limit). Goal: TTFT under the burst <= 2x alone.

Who a request acts as: accounts mode sets `request.state.principal` from a session or an
API key; here a middleware sets it from an `X-Bench-User` header (a stand-in for that
authentication only; admission, gateway and engines are the real ones). The app runs in
this process (uvicorn), the engines in their own.

    uv run python benchmarks/users.py [--engines mlx,llamacpp] [--users 4] [--per-user 2]
                                      [--answer-tokens 64] [--burst-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _common import free_port
from fastapi import FastAPI, Request, Response

from legal_assistant.accounts.principal import Principal
from legal_assistant.api.app import create_app
from legal_assistant.config import Settings
from legal_assistant.runtime.engines.mlx import batch_size
from legal_assistant.runtime.installer import is_installed

MODELS = {"mlx": "mlx:smollm2-135m", "llamacpp": "llamacpp:smollm2-135m"}
NAMES = ["Alice", "Bernard", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo"]
ANSWER_TOKENS = 64
BURST = 8
BURST_TOKENS = 128
QUESTION_TOKENS = 8


def story(i: int) -> str:
    return (
        f"Write a long, detailed story about a lawyer named {NAMES[i % len(NAMES)]} "
        f"who defends baker number {i} in court."
    )


def question(i: int) -> str:
    return f"Question {i} : qu'est-ce qu'un bail commercial ?"


@dataclass
class Run:
    ttft: float  # seconds to the first content token
    total: float
    tokens: int


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)

    @app.middleware("http")
    async def as_user(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        user = request.headers.get("x-bench-user")
        if user:
            request.state.principal = Principal(user_id=user, username=user, role="member")
        return await call_next(request)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=3600, trust_env=False, limits=limits
        ) as client:
            yield app, client
    finally:
        server.should_exit = True
        await task


async def ask(
    client: httpx.AsyncClient,
    model: str,
    user: str,
    prompt: str,
    max_tokens: int,
    first: asyncio.Event | None = None,
) -> Run:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    ttft: float | None = None
    tokens = 0
    async with client.stream(
        "POST", "/v1/chat/completions", json=body, headers={"X-Bench-User": user}
    ) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {(await resp.aread())[:300]!r}")
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = int(chunk["usage"].get("completion_tokens") or 0)
            if ttft is None and any(
                (c.get("delta") or {}).get("content") for c in chunk.get("choices") or []
            ):
                ttft = time.perf_counter() - t0
                if first is not None:
                    first.set()
    total = time.perf_counter() - t0
    return Run(ttft if ttft is not None else total, total, tokens)


def settings_for(data: Path, *, fair: bool) -> Settings:
    (data / "hf" / "hub").mkdir(parents=True, exist_ok=True)
    probe = Settings(data_dir=data)
    return Settings(
        data_dir=data,
        hf_home=data / "hf",
        load_timeout_s=120,
        warm_default=False,
        fair_admission=fair,
        # Accounts mode's default share (the engine's parallelism - 1): the users here come
        # from a header with AUTH_MODE=none, whose default lets the one local user fill
        # the engine. Both engines run the same number at once by default.
        max_inflight_per_user=max(1, batch_size(probe) - 1),
        kv_cache_max_gb=0,  # no slot files: each app starts from a cold cache
    )


async def batching(
    client: httpx.AsyncClient, model: str, users: int, per_user: int, tokens: int
) -> None:
    await ask(client, model, "warm", story(99), 8)  # first answer of a fresh engine
    alone = [await ask(client, model, f"u{i}", story(i), tokens) for i in range(4)]
    one = statistics.median(r.total for r in alone)
    t0 = time.perf_counter()
    together = await asyncio.gather(
        *(ask(client, model, f"u{i}", story(i), tokens) for i in range(4))
    )
    wall4 = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = await asyncio.gather(
        *(
            ask(client, model, f"u{u}", story(u * per_user + m), tokens)
            for u in range(users)
            for m in range(per_user)
        )
    )
    wall_n = time.perf_counter() - t0
    n = users * per_user
    serial_n = one * n
    tok1 = statistics.median(r.tokens for r in alone)
    print(f"  one answer alone (median of 4): {one:.2f}s, {tok1:.0f} tokens", flush=True)
    print(
        f"  4 users at once: wall {wall4:.2f}s = {wall4 / one:.2f}x one "
        f"(goal <= 2.0x); serial would be {sum(r.total for r in alone):.2f}s; "
        f"tokens {[r.tokens for r in together]}",
        flush=True,
    )
    print(
        f"  {users} users x {per_user} requests: wall {wall_n:.2f}s = {wall_n / one:.2f}x one, "
        f"{wall_n / serial_n:.2f}x serial ({serial_n:.2f}s); "
        f"TTFT p50 {statistics.median(r.ttft for r in many):.2f}s "
        f"max {max(r.ttft for r in many):.2f}s",
        flush=True,
    )


async def fairness(
    app: FastAPI, client: httpx.AsyncClient, model: str, burst_tokens: int
) -> tuple[float, float]:
    """(Bob's TTFT alone, Bob's TTFT while Alice's burst runs)."""
    admission = app.state.la.admission
    await ask(client, model, "warm", story(99), 8)
    alone = statistics.median(
        [(await ask(client, model, "bob", question(i), QUESTION_TOKENS)).ttft for i in range(3)]
    )
    started = asyncio.Event()
    burst = [
        asyncio.create_task(ask(client, model, "alice", story(i), burst_tokens, started))
        for i in range(BURST)
    ]
    try:
        # Bob asks once all of Alice's requests are in and the engine is decoding them.
        # (Admission's counts have no event to wait on: polled every 10 ms.)
        while sum(admission.load(model)) < BURST:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await started.wait()
        bob = await ask(client, model, "bob", question(7), QUESTION_TOKENS)
    finally:
        for t in burst:
            t.cancel()
        await asyncio.gather(*burst, return_exceptions=True)
    return alone, bob.ttft


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="mlx,llamacpp")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--per-user", type=int, default=2)
    parser.add_argument("--answer-tokens", type=int, default=ANSWER_TOKENS)
    parser.add_argument("--burst-tokens", type=int, default=BURST_TOKENS)
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float]] = []
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="la-bench-users-") as tmp:
        for kind in args.engines.split(","):
            model = MODELS[kind]
            fair = settings_for(Path(tmp) / kind / "fair", fair=True)
            if kind == "llamacpp" and not is_installed(fair.engines_dir, "llamacpp"):
                print("llama-server is not installed (make engines): skipped", flush=True)
                continue
            for mode in ("fifo", "fair"):
                settings = settings_for(Path(tmp) / kind / mode, fair=mode == "fair")
                print(f"{model} ({mode} admission)", flush=True)
                async with serve(settings) as (app, client):
                    cap, share = app.state.la.admission.limits(model)
                    print(f"  engine runs {cap} at once; one user may run {share}", flush=True)
                    if mode == "fair":
                        await batching(client, model, args.users, args.per_user, args.answer_tokens)
                    alone, burst = await fairness(app, client, model, args.burst_tokens)
                    print(
                        f"  Bob's TTFT alone {alone:.2f}s, under Alice's burst "
                        f"({BURST} x {args.burst_tokens} tokens) {burst:.2f}s",
                        flush=True,
                    )
                    rows.append((model, mode, alone, burst))
    print()
    print(f"{'model':<24} {'admission':<9} {'TTFT alone':>10} {'under burst':>11} {'ratio':>7}")
    for model, mode, alone, burst in rows:
        print(f"{model:<24} {mode:<9} {alone:>9.2f}s {burst:>10.2f}s {burst / alone:>6.2f}x")
    print("goal: under burst <= 2x alone (fair admission)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
