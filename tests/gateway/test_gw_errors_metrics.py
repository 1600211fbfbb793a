"""Gateway errors in the OpenAI form, the API key, Prometheus `/metrics`, and Ollama
models through `/v1/chat/completions`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from legal_assistant.config import Settings


def _openai_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    return error


async def test_unknown_models_and_bad_bodies_get_openai_errors(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    async with serve_gateway(gw_fake_settings()) as gw:
        body = {"messages": [{"role": "user", "content": "hi"}]}

        resp = await gw.client.post(
            "/v1/chat/completions", json={**body, "model": "mlx:nobody/none"}
        )
        assert resp.status_code == 404, resp.text
        error = _openai_error(resp.json(), "model_not_found")
        assert error["type"] == "invalid_request_error" and error["param"] == "model"

        resp = await gw.client.post("/v1/chat/completions", json={**body, "model": "foo:bar"})
        assert resp.status_code == 404, resp.text
        _openai_error(resp.json(), "unknown_provider")

        resp = await gw.client.post(
            "/v1/chat/completions",
            content=b'{"model": "mlx:smollm2-135m", "messages": [',
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 400, resp.text
        error = _openai_error(resp.json(), "bad_request")
        assert error["type"] == "invalid_request_error"

        resp = await gw.client.post("/v1/completions", json={"prompt": "no model"})
        assert resp.status_code == 400, resp.text
        _openai_error(resp.json(), "bad_request")

        # The official client turns these into its typed errors.
        client = gw.openai(max_retries=0)
        try:
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(
                    model="mlx:nobody/none", messages=[{"role": "user", "content": "hi"}]
                )
            assert caught.value.code == "model_not_found"
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(
                    model="foo:bar", messages=[{"role": "user", "content": "hi"}], stream=True
                )
            assert caught.value.code == "unknown_provider"
        finally:
            await client.close()
        # No engine process was started for any of these.
        assert all(e["pid"] is None for e in await gw.engines())


async def test_api_key_is_required_when_configured(
    serve_gateway: Callable[..., Any], gw_fake_settings: Callable[..., Settings]
) -> None:
    async with serve_gateway(gw_fake_settings(api_key="k")) as gw:
        resp = await gw.client.get("/v1/models")
        assert resp.status_code == 401, resp.text
        _openai_error(resp.json(), "unauthorized")
        resp = await gw.client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
        assert resp.status_code == 401
        resp = await gw.client.get("/metrics")
        assert resp.status_code == 401

        good = gw.openai(api_key="k")
        bad = gw.openai(api_key="nope", max_retries=0)
        try:
            listed = await good.models.list()
            assert "mlx:smollm2-135m" in {m.id for m in listed.data}
            with pytest.raises(openai.AuthenticationError):
                await bad.models.list()
        finally:
            await good.close()
            await bad.close()


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample whose labels include `labels`."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


async def test_metrics_after_requests_and_a_failed_start(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_model: Callable[..., Path],
) -> None:
    model = fake_model("metered", tokens=5)
    broken = fake_model("broken", crash_at_start=3)
    model_id = f"mlx:{model}"
    async with serve_gateway(gw_fake_settings()) as gw:
        client = gw.openai(max_retries=0)
        try:
            for _ in range(2):
                resp = await client.chat.completions.create(
                    model=model_id, messages=[{"role": "user", "content": "hi"}]
                )
                assert resp.choices[0].message.content
            stream = await client.chat.completions.create(
                model=model_id, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert [c async for c in stream]
            comp = await client.completions.create(model=model_id, prompt="hi")
            assert comp.choices[0].text
        finally:
            await client.close()

        async def ready() -> str | None:
            text = await gw.metrics()
            ok = _sample(
                text, "legal_assistant_engine_start_duration_seconds_count", model=model_id
            )
            return text if ok else None

        text = await gw.poll(ready, timeout=10, what="the start to be recorded")
        assert _sample(text, "legal_assistant_engine_state", model=model_id, state="ready") == 1.0
        assert _sample(text, "legal_assistant_engine_state", model=model_id, state="stopped") == 0.0
        assert _sample(text, "legal_assistant_engine_starts_total", model=model_id) == 1.0
        assert (
            _sample(text, "legal_assistant_engine_start_duration_seconds_count", model=model_id)
            == 1.0
        )
        streamed = _sample(text, "legal_assistant_tokens_streamed_total", model=model_id)
        assert streamed is not None and streamed > 0
        # One observation per request: 2 chats + 1 streamed chat + 1 text completion.
        chat_n = _sample(
            text,
            "legal_assistant_gateway_request_duration_seconds_count",
            route="chat/completions",
            status="200",
        )
        text_n = _sample(
            text,
            "legal_assistant_gateway_request_duration_seconds_count",
            route="completions",
            status="200",
        )
        assert (chat_n, text_n) == (3.0, 1.0), text
        assert _sample(text, "legal_assistant_engine_inflight_requests", model=model_id) == 0.0

        resp = await gw.client.post(
            "/v1/chat/completions",
            json={"model": f"mlx:{broken}", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert resp.status_code == 503, resp.text
        _openai_error(resp.json(), "engine_crashed")

        async def failure_counted() -> str | None:
            text = await gw.metrics()
            n = _sample(text, "legal_assistant_engine_failures_total", code="engine_crashed")
            return text if n == 1.0 else None

        text = await gw.poll(failure_counted, timeout=10, what="the failure to be counted")
        assert (
            _sample(text, "legal_assistant_engine_state", model=f"mlx:{broken}", state="failed")
            == 1.0
        )
        assert (
            _sample(
                text,
                "legal_assistant_gateway_request_duration_seconds_count",
                route="chat/completions",
                status="503",
            )
            == 1.0
        ), text


async def test_ollama_model_through_the_gateway(
    serve_gateway: Callable[..., Any],
    gw_fake_settings: Callable[..., Settings],
    fake_ollama: Any,
) -> None:
    name = fake_ollama.models[1].name  # e.g. "qwen2.5:0.5b"
    model_id = f"ollama:{name}"
    async with serve_gateway(gw_fake_settings(ollama_url=fake_ollama.url)) as gw:
        client = gw.openai(max_retries=0)
        try:
            listed = await client.models.list()
            assert model_id in {m.id for m in listed.data}

            stream = await client.chat.completions.create(
                model=model_id,
                messages=[{"role": "user", "content": "Bonjour"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            parts: list[str] = []
            finish: list[str] = []
            usage = None
            async for chunk in stream:
                assert chunk.model == model_id
                for choice in chunk.choices:
                    parts.append(choice.delta.content or "")
                    if choice.finish_reason:
                        finish.append(choice.finish_reason)
                usage = chunk.usage or usage
            assert len([p for p in parts if p]) >= 2
            assert "".join(parts) == fake_ollama.reply
            assert finish == ["stop"]
            assert usage is not None and usage.completion_tokens == len([p for p in parts if p])

            resp = await client.chat.completions.create(
                model=model_id, messages=[{"role": "user", "content": "Bonjour"}]
            )
            assert resp.choices[0].message.content == fake_ollama.reply
        finally:
            await client.close()
        assert fake_ollama.chat_requests[-1]["model"] == name
