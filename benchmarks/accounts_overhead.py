"""What accounts mode costs a request: the authentication gate (a session looked up in
SurrealDB), the access policy (the caller's role in the dossier) and the audit record,
against the same requests with `AUTH_MODE=none`.

    scripts/uv run python benchmarks/accounts_overhead.py [--n 300]

Prints the median and p95 latency of a dossier read, the dossier list and a search-free
document list, in both modes, and their ratio. The app runs in this process under
uvicorn (as in the tests), on a temporary data directory; no engine is started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from legal_assistant.accounts.users import create_user
from legal_assistant.api.app import create_app
from legal_assistant.config import Settings

PASSWORD = "benchmark password 1234"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn has no "started" event; a failed start ends the task
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task


async def timings(client: httpx.AsyncClient, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = await client.get(path)
        out.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.text
    return out


async def run_mode(mode: str, n: int) -> dict[str, list[float]]:
    root = Path(tempfile.mkdtemp(prefix="la-bench-accounts-"))
    settings = Settings(
        data_dir=root / "data", auth_mode=mode, warm_default=False, hf_home=root / "hf"
    )
    async with (
        serve(settings) as (url, app),
        httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as client,
    ):
        if mode == "accounts":
            await create_user(
                app.state.la.db,
                username="alice",
                password=PASSWORD,
                role="member",
                min_password_chars=12,
            )
            login = await client.post(
                "/api/auth/login", json={"username": "alice", "password": PASSWORD}
            )
            client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        for i in range(20):  # a few dossiers, one of them read
            made = await client.post("/api/dossiers", json={"name": f"Dossier {i}"})
        dossier = made.json()["id"]
        paths = {
            "GET /api/dossiers/{id}": f"/api/dossiers/{dossier}",
            "GET /api/dossiers": "/api/dossiers",
            "GET /api/dossiers/{id}/documents": f"/api/dossiers/{dossier}/documents",
        }
        for path in paths.values():
            await timings(client, path, 10)  # warm
        return {name: await timings(client, path, n) for name, path in paths.items()}


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n
    none = await run_mode("none", n)
    accounts = await run_mode("accounts", n)
    print(f"{n} sequential requests each, median / p95 in ms\n")
    print(f"{'request':34} {'none':>15} {'accounts':>15} {'ratio (median)':>15}")
    for name in none:
        a, b = none[name], accounts[name]
        ma, mb = statistics.median(a) * 1000, statistics.median(b) * 1000
        print(
            f"{name:34} {ma:6.2f} / {p95(a) * 1000:6.2f} {mb:6.2f} / {p95(b) * 1000:6.2f}"
            f" {mb / ma:14.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
