"""llama.cpp's `llama-server` under the supervisor, on the bundled GGUF:

1. continuous batching: wall time of 4 and 8 concurrent 64-token answers vs one;
2. KV slots kept across swaps: time to first token of a ~2,000-token prompt after
   switching away and back (slots saved and restored) vs a fresh engine without restore;
3. decode tokens/s and cold start.

    uv run python benchmarks/engines.py [--runs 3] [--tokens 64]

Requests go straight to the engine's loopback port (the gateway adds the same small
constant to every row). Each row is a median of `--runs`; the machine is shared, so
read ratios rather than absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from legal_assistant.config import Settings
from legal_assistant.runtime.bundled import bundled_gguf_path
from legal_assistant.runtime.engines.llamacpp import slot_count, thread_count
from legal_assistant.runtime.supervisor import Supervisor

if TYPE_CHECKING:
    from legal_assistant.runtime import Engine

MODEL = "llamacpp:smollm2-135m"
SHORT = "Qu'est-ce qu'un contrat de bail ? Réponds en trois phrases."
# ~2,000 tokens of dossier-like text: the shared prefix a restored slot saves.
LONG = (
    " ".join(
        f"Pièce {i}. Le preneur déclare avoir reçu les clés le {i % 28 + 1} mars et "
        f"constate l'état des lieux suivant : peinture du séjour écaillée, robinet de la "
        f"cuisine fuyant, chaudière entretenue le {i % 12 + 1} janvier."
        for i in range(1, 28)
    )
    + "\n\nQuestion : quelles réparations incombent au bailleur ?"
)  # fmt: skip
# A new connection per request: llama-server may close a kept-alive connection right after
# a streamed answer, and a reused one then fails with "Server disconnected" (the backend's
# own client resends such a request, `engine_http.py`; the benchmark's plain one does not).
FRESH = httpx.Limits(max_keepalive_connections=0)
# llama-cpp-python's server on the same GGUF and machine (issue 15, FIELD-NOTES.md).
BEFORE = {"one": 0.58, "four": 3.36, "decode": 80.0, "cold": 0.55}


def settings(data: Path, **extra: object) -> Settings:
    (data / "hf" / "hub").mkdir(parents=True, exist_ok=True)
    return Settings(data_dir=data, hf_home=data / "hf", load_timeout_s=120, **extra)


async def answer(
    client: httpx.AsyncClient, engine: Engine, prompt: str, tokens: int
) -> tuple[float, float, int, int]:
    """(time to first token, decode tok/s, tokens, prompt tokens processed), streamed."""
    body = {
        "model": engine.served_model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0.0,
        "stream": True,
        "ignore_eos": True,
        "timings_per_token": False,
    }
    t0 = time.perf_counter()
    first = last = 0.0
    n = processed = 0
    async with client.stream("POST", f"{engine.base_url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "timings" in chunk:
                processed = int(chunk["timings"].get("prompt_n", 0))
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
                n += 1
    tps = (n - 1) / (last - first) if n > 1 and last > first else 0.0
    return first - t0, tps, n, processed


async def concurrency(sup: Supervisor, runs: int, tokens: int) -> dict[int, float]:
    engine = await sup.ensure_ready(MODEL)
    walls: dict[int, list[float]] = {1: [], 4: [], 8: []}
    async with httpx.AsyncClient(trust_env=False, timeout=600, limits=FRESH) as client:
        await answer(client, engine, SHORT, 8)  # warm-up
        for i in range(runs):
            for k in walls if i % 2 == 0 else reversed(walls):
                t0 = time.perf_counter()
                prompts = [f"{SHORT} ({j})" for j in range(k)]
                await asyncio.gather(*(answer(client, engine, p, tokens) for p in prompts))
                walls[k].append(time.perf_counter() - t0)
            print(f"run {i + 1}: " + "  ".join(f"{k}: {v[-1]:.2f}s" for k, v in walls.items()))
    return {k: statistics.median(v) for k, v in walls.items()}


async def ttft_fresh(other: Path) -> tuple[float, int]:
    data = Path(tempfile.mkdtemp(prefix="la-bench-fresh-"))
    sup = Supervisor(settings(data))
    try:
        engine = await sup.ensure_ready(MODEL)
        async with httpx.AsyncClient(trust_env=False, timeout=600, limits=FRESH) as client:
            ttft, _, _, processed = await answer(client, engine, LONG, 1)
        return ttft, processed
    finally:
        await sup.shutdown()
        shutil.rmtree(data, ignore_errors=True)


async def ttft_restored(other: Path) -> tuple[float, int]:
    data = Path(tempfile.mkdtemp(prefix="la-bench-restore-"))
    s = settings(data)
    sup = Supervisor(s)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=600, limits=FRESH) as client:
            engine = await sup.ensure_ready(MODEL)
            await answer(client, engine, LONG, 1)  # the conversation so far
            await sup.ensure_ready(f"llamacpp:{other}")  # switch away (slots saved) ...
            back = await sup.ensure_ready(MODEL)  # ... and back (restored before use)
            ttft, _, _, processed = await answer(client, back, LONG, 1)
        return ttft, processed
    finally:
        await sup.shutdown()
        shutil.rmtree(data, ignore_errors=True)


async def restore(runs: int) -> tuple[float, float, int, int]:
    other = Path(tempfile.mkdtemp(prefix="la-bench-gguf-")) / "other.gguf"
    shutil.copyfile(bundled_gguf_path(), other)
    fresh: list[tuple[float, int]] = []
    warm: list[tuple[float, int]] = []
    for i in range(runs):
        for side in ("fresh", "warm") if i % 2 == 0 else ("warm", "fresh"):
            (fresh if side == "fresh" else warm).append(
                await (ttft_fresh if side == "fresh" else ttft_restored)(other)
            )
        print(
            f"run {i + 1}: fresh {fresh[-1][0] * 1000:.0f}ms ({fresh[-1][1]} prompt tokens "
            f"processed)  restored {warm[-1][0] * 1000:.0f}ms ({warm[-1][1]} processed)"
        )
    shutil.rmtree(other.parent, ignore_errors=True)
    return (
        statistics.median(t for t, _ in fresh),
        statistics.median(t for t, _ in warm),
        fresh[-1][1],
        warm[-1][1],
    )


async def cold_and_decode(sup: Supervisor, runs: int, tokens: int) -> tuple[float, float]:
    colds: list[float] = []
    rates: list[float] = []
    async with httpx.AsyncClient(trust_env=False, timeout=600, limits=FRESH) as client:
        for _ in range(runs):
            await sup.stop(None)
            t0 = time.perf_counter()
            engine = await sup.ensure_ready(MODEL)
            colds.append(time.perf_counter() - t0)
            _, tps, _, _ = await answer(client, engine, SHORT, tokens)
            rates.append(tps)
    return statistics.median(colds), statistics.median(rates)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="la-bench-engines-"))
    s = settings(data)
    sup = Supervisor(s)
    try:
        walls = await concurrency(sup, args.runs, args.tokens)
        cold, decode = await cold_and_decode(sup, args.runs, args.tokens)
    finally:
        await sup.shutdown()
        shutil.rmtree(data, ignore_errors=True)
    fresh, warm, n_fresh, n_warm = await restore(args.runs)

    print()
    print(
        f"llama-server, bundled SmolLM2-135M Q4_1, --parallel {slot_count(s)} --threads "
        f"{thread_count(s)}; medians of {args.runs} runs"
    )
    print(f"{'measure':<46} {'llama-server':>13} {'ratio':>8} {'before':>8}")
    one = walls[1]
    print(f"{'1 answer of ' + str(args.tokens) + ' tokens (s)':<46} {one:>13.2f} {1:>7.2f}x "
          f"{BEFORE['one']:>7.2f}s")  # fmt: skip
    for k in (4, 8):
        before = f"{BEFORE['four'] / BEFORE['one']:>7.2f}x" if k == 4 else f"{'':>8}"
        print(f"{f'{k} concurrent answers, wall (s)':<46} {walls[k]:>13.2f} "
              f"{walls[k] / one:>7.2f}x {before}")  # fmt: skip
    print(f"{'TTFT ' + str(n_fresh) + '-token prompt, fresh engine (s)':<46} {fresh:>13.3f} "
          f"{1:>7.2f}x")  # fmt: skip
    print(f"{'TTFT same, after switch away+back, restored (s)':<46} {warm:>13.3f} "
          f"{warm / fresh:>7.2f}x   ({n_warm} prompt tokens processed)")  # fmt: skip
    print(f"{'decode (tok/s)':<46} {decode:>13.1f} {'':>8} {BEFORE['decode']:>7.0f}")
    print(f"{'cold start to ready (s)':<46} {cold:>13.2f} {'':>8} {BEFORE['cold']:>7.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
