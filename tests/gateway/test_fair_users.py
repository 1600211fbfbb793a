"""Fair sharing of an engine between users, through the real app and gateway (issue 21).

Who a request acts as comes from `request.state.principal`, which accounts mode sets from
a session or an API key. Here a one-line middleware sets it from an `X-Test-User` header
instead: a stand-in for that authentication only; admission, the gateway, the chat
service and the engine process (the fake engine, a protocol-faithful stand-in for
mlx_lm.server that answers without a model) are the real ones. Ordering, not timing: the
test waits on admission's own counts, read from /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from fastapi import Request, Response
from prometheus_client.parser import text_string_to_metric_families

from app_harness import build_server, free_port, poll
from legal_assistant.accounts.principal import Principal
from legal_assistant.config import Settings


@contextlib.asynccontextmanager
async def serve_as_users(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a free loopback port, each request acting as its `X-Test-User`."""
    port = free_port()
    app, server = build_server(settings, port)

    @app.middleware("http")
    async def as_user(request: Request, call_next: Callable[[Request], Awaitable[Response]]):  # type: ignore[no-untyped-def]
        user = request.headers.get("x-test-user")
        if user:
            request.state.principal = Principal(user_id=user, username=user, role="member")
        return await call_next(request)

    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "the app did not start"
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, trust_env=False
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def admission_counts(metrics: str, model: str) -> dict[tuple[str, str], float]:
    """{(user, state): n} from `legal_assistant_admission_requests`."""
    return {
        (s.labels["user"], s.labels["state"]): s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "legal_assistant_admission_requests"
        for s in family.samples
        if s.labels["model"] == model
    }


def wait_count(metrics: str, user: str) -> float | None:
    """How many admitted requests of `user` the wait histogram counted."""
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == "legal_assistant_admission_wait_seconds_count" and s.labels == {
                "user": user
            }:
                return s.value
    return None


async def test_a_colleagues_question_is_answered_while_a_burst_waits(
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
    fake_engine_module: ModuleType,
) -> None:
    # Alice's answers never end on their own; the engine runs 2 requests at once, and one
    # user may hold only 1 of them (the default with accounts: the engine's parallelism
    # minus one; set here, as the users come from a test header, not from accounts).
    model = fake_model("shared", tokens=1_000_000, token_rate=20)
    model_id = f"mlx:{model}"
    settings = gw_fake_settings(mlx_parallel=2, max_inflight_per_user=1)
    body: dict[str, Any] = {"model": model_id, "messages": [{"role": "user", "content": "?"}]}

    async with serve_as_users(settings) as client:

        async def alice() -> None:
            async with client.stream(
                "POST",
                "/v1/chat/completions",
                json={**body, "stream": True},
                headers={"X-Test-User": "alice"},
            ) as resp:
                async for _ in resp.aiter_bytes():
                    pass

        async def chat_turn(user: str) -> str:
            """A chat turn (/api/chat/stream) as `user`: its last SSE event's name."""
            last = ""
            async with client.stream(
                "POST",
                "/api/chat/stream",
                json={"message": "?", "model_id": model_id, "max_tokens": 3},
                headers={"X-Test-User": user},
            ) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("event:"):
                        last = line.split(":", 1)[1].strip()
            return last

        async def counts() -> dict[tuple[str, str], float]:
            return admission_counts((await client.get("/metrics")).text, model_id)

        burst: list[asyncio.Task[Any]] = [asyncio.create_task(alice()) for _ in range(4)]
        try:
            await poll(
                lambda: _is(counts(), {("alice", "running"): 1, ("alice", "waiting"): 3}),
                timeout=30,
                what="alice: 1 running, 3 waiting",
            )
            resp = await client.post(
                "/v1/chat/completions",
                json={**body, "max_tokens": 5},
                headers={"X-Test-User": "bob"},
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"] == (
                fake_engine_module.expected_text(5)
            )
            # Bob was answered while Alice's second request still waited.
            assert await counts() == {("alice", "running"): 1, ("alice", "waiting"): 3}
            text = (await client.get("/metrics")).text
            assert wait_count(text, "bob") == 1.0 and wait_count(text, "alice") == 1.0
            # Chat turns queue as their user too: Bob's is answered, Alice's waits.
            assert await chat_turn("bob") == "done"
            burst.append(asyncio.create_task(chat_turn("alice")))
            await poll(
                lambda: _is(counts(), {("alice", "running"): 1, ("alice", "waiting"): 4}),
                timeout=30,
                what="alice's chat turn queued behind her burst",
            )
        finally:
            for t in burst:
                t.cancel()
            await asyncio.gather(*burst, return_exceptions=True)
        await poll(lambda: _is(counts(), {}), timeout=30, what="admission back to empty")


async def _is(
    got: Awaitable[dict[tuple[str, str], float]], want: dict[tuple[str, str], int]
) -> bool:
    return await got == {k: float(v) for k, v in want.items()}
