"""Cold start: supervisor `ensure_ready` + first token vs the raw engine spawned by hand
and polled as fast as possible for the same first token. Alternating runs, same model.

    uv run python benchmarks/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

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


async def supervised_once(model_id: str) -> float:
    sup = Supervisor(settings())
    try:
        t0 = time.perf_counter()
        engine = await sup.ensure_ready(model_id)
        assert engine.port is not None and engine.served_model is not None
        with httpx.Client(trust_env=False) as client:
            await asyncio.to_thread(first_token_request, client, engine.port, engine.served_model)
        return time.perf_counter() - t0
    finally:
        await sup.shutdown()


def raw_once(model_path: str) -> float:
    from pathlib import Path

    s = settings()
    port = free_port()
    with httpx.Client(trust_env=False) as client:
        t0 = time.perf_counter()
        proc = raw_spawn(Path(model_path), port, s.resolved_hf_home)
        try:
            raw_until_first_token(client, port, Path(model_path))
            return time.perf_counter() - t0
        finally:
            raw_stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    model, _ = models()
    raw_once(str(model))  # warm the page cache for both sides
    base, sup = alternate(
        args.runs,
        lambda: raw_once(str(model)),
        lambda: asyncio.run(supervised_once(f"mlx:{model}")),
    )
    print()
    print(
        table(
            "Cold start to first token (bundled SmolLM2, mlx_lm.server)",
            [("spawn → first token", base, sup)],
        )
    )
    print("goal: ratio ≤ 1.05x")


if __name__ == "__main__":
    main()
