"""Readiness: "HTTP up" (reported as LOADING) and "the model really answers" (READY).

`mlx_lm.server` answers /health and /v1/models before its model is loaded and even after
the load failed (FIELD-NOTES.md), so HTTP 200 is only the LOADING signal. READY means the
model produced one token. A completion sent while the model loads simply waits for the
load, so one request is both the probe and the earliest possible signal. We retry fast
(10 ms, backing off to 50 ms) instead of the seed's fixed 1 s sleep.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from legal_assistant.errors import LegalAssistantError


class ProbeRejected(Exception):
    """The engine answered the probe with an error that will not go away by waiting."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


async def wait_http_up(client: httpx.AsyncClient, base_url: str) -> None:
    """Return as soon as the engine answers any HTTP request."""
    delay = 0.01
    while True:
        try:
            await client.get(f"{base_url}/health", timeout=2.0)
            return
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            pass
        except httpx.TimeoutException:
            pass
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.05)


async def probe_completion(client: httpx.AsyncClient, base_url: str, served_model: str) -> None:
    """One-token text completion; returns when the model has answered. A raw completion
    of a one-word prompt (no chat template, no system prompt) is the cheapest request that
    proves the weights are loaded: it keeps the probe's cost out of the cold start."""
    body = json.dumps(
        {
            "model": served_model,
            "prompt": "Hi",
            "max_tokens": 1,
            "temperature": 0.0,
            "stream": False,
        }
    ).encode()
    delay = 0.01
    while True:
        try:
            # No read timeout here: the stall watchdog decides when waiting is pointless
            # (a loading model can legitimately take minutes on a first start).
            resp = await client.post(
                f"{base_url}/v1/completions",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=httpx.Timeout(None, connect=5.0),
            )
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.05)
            continue
        if resp.status_code == 200:
            try:
                data = resp.json()
            except ValueError as e:
                raise ProbeRejected(200, resp.text) from e
            if isinstance(data, dict) and data.get("choices"):
                return
            raise ProbeRejected(200, resp.text)
        if resp.status_code == 503:  # engines that say "loading" this way (llama.cpp)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)
            continue
        raise ProbeRejected(resp.status_code, resp.text)


def probe_error(exc: ProbeRejected, tail: list[str]) -> LegalAssistantError:
    return LegalAssistantError(
        "engine_wedged" if "generation thread died" in exc.body else "upstream_error",
        str(exc),
        log_tail=tail,
    )
