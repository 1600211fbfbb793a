"""Switch: supervisor switch A → B (drain, stop A, start B, first token) vs doing it by
hand as fast as possible (SIGTERM A, wait for its exit, spawn B, poll for a first token).

    uv run python benchmarks/switch.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx
from _common import (
    alternate,
    first_token_request,
    free_port,
    models,
    raw_spawn,
    raw_stop,
    raw_until_first_token,
    settings,
    table,
)

from legal_assistant.runtime.supervisor import Supervisor


async def supervised_once(a: Path, b: Path) -> float:
    sup = Supervisor(settings())
    try:
        await sup.ensure_ready(f"mlx:{a}")
        t0 = time.perf_counter()
        engine = await sup.ensure_ready(f"mlx:{b}")
        assert engine.port is not None and engine.served_model is not None
        with httpx.Client(trust_env=False) as client:
            await asyncio.to_thread(first_token_request, client, engine.port, engine.served_model)
        return time.perf_counter() - t0
    finally:
        await sup.shutdown()


def raw_once(a: Path, b: Path) -> float:
    s = settings()
    with httpx.Client(trust_env=False) as client:
        port_a = free_port()
        proc_a = raw_spawn(a, port_a, s.resolved_hf_home)
        raw_until_first_token(client, port_a, a)
        t0 = time.perf_counter()
        raw_stop(proc_a)
        port_b = free_port()
        proc_b = raw_spawn(b, port_b, s.resolved_hf_home)
        try:
            raw_until_first_token(client, port_b, b)
            return time.perf_counter() - t0
        finally:
            raw_stop(proc_b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    a, b = models()
    base, sup = alternate(
        args.runs, lambda: raw_once(a, b), lambda: asyncio.run(supervised_once(a, b))
    )
    print()
    print(
        table(
            "Switch A → B to first token (two paths of the bundled model)",
            [("stop A + start B → first token", base, sup)],
        )
    )
    print("goal: ratio ≤ 1.05x")


if __name__ == "__main__":
    main()
