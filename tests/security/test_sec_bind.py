"""Where the backend and its engines listen, and who may talk to them: loopback by
default; a non-loopback bind needs an API key (checked in constant time); engines listen
on 127.0.0.1 only, with no backend secret in their environment; CORS closed; requests a
web page could forge (DNS rebinding, cross-site POSTs) refused."""

from __future__ import annotations

import hmac
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from pydantic import ValidationError
from sec_helpers import (
    assert_refusal,
    fake_engine_settings,
    make_fake_model,
    serve_app,
)

from app_harness import RunningApp, free_port
from legal_assistant.api import deps
from legal_assistant.config import Settings

KEY = "correct-horse-battery-staple-0123456789"
EVIL = "http://evil.example"


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEGAL_ASSISTANT_CONFIG_FILE", str(tmp_path / "absent.toml"))
    for name in list(os.environ):
        if name.startswith("LEGAL_ASSISTANT_") and name != "LEGAL_ASSISTANT_CONFIG_FILE":
            monkeypatch.delenv(name)
    # As everywhere in the suite (conftest.py): no background warm-up of the default model.
    monkeypatch.setenv("LEGAL_ASSISTANT_WARM_DEFAULT", "false")


# ------------------------------------------------------------------ binding rules
def test_default_bind_is_loopback() -> None:
    assert Settings().host == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", "10.0.0.1"])
def test_non_loopback_bind_without_key_is_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="requires LEGAL_ASSISTANT_API_KEY"):
        Settings(host=host, data_dir=tmp_path)
    with pytest.raises(ValidationError):
        Settings(host=host, api_key="", data_dir=tmp_path)
    assert Settings(host=host, api_key=KEY, data_dir=tmp_path).api_key == KEY


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_binds_need_no_key(host: str, tmp_path: Path) -> None:
    assert Settings(host=host, data_dir=tmp_path).api_key is None


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "192.168.1.5", "my-laptop.local"])
def test_empty_and_non_loopback_hosts_require_an_api_key(host: str, tmp_path: Path) -> None:
    """An empty host binds every interface (uvicorn): it is not loopback."""
    with pytest.raises(ValueError, match="requires LEGAL_ASSISTANT_API_KEY"):
        Settings(host=host, data_dir=tmp_path)
    assert Settings(host=host, data_dir=tmp_path, api_key="k" * 32).api_key


@pytest.mark.parametrize(
    "args_env",
    [
        (["--host", "0.0.0.0"], {}),
        ([], {"LEGAL_ASSISTANT_HOST": "192.168.1.5"}),
        ([], {"LEGAL_ASSISTANT_HOST": ""}),
    ],
    ids=["flag", "env", "empty"],
)
def test_serve_on_the_network_without_key_exits_with_one_clear_line(
    tmp_path: Path, args_env: tuple[list[str], dict[str, str]]
) -> None:
    args, extra = args_env
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEGAL_ASSISTANT_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env |= {
        "LEGAL_ASSISTANT_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "LEGAL_ASSISTANT_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "40",  # a narrow terminal must not fold the message either
        **extra,
    }
    port = str(free_port())
    proc = subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", "serve", "--port", port, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "requires LEGAL_ASSISTANT_API_KEY" in lines[0] and "not loopback" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before touching anything


# ------------------------------------------------------------------ API key
@pytest_asyncio.fixture
async def keyed_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningApp, Path]]:
    """Bound (in its settings) to every interface, with a key; the server itself listens
    on loopback in the test. The key is also in the backend's environment, like a real
    deployment, to check that engines do not inherit it."""
    monkeypatch.setenv("LEGAL_ASSISTANT_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-passed-on")
    fake = make_fake_model(tmp_path)
    settings = fake_engine_settings(tmp_path, host="0.0.0.0", api_key=KEY)
    async with serve_app(settings) as app:
        yield app, fake


def _wrong_keys() -> list[str]:
    return [
        "",
        "x",
        KEY[:-1],
        KEY[:1],
        KEY + "x",
        KEY + KEY,
        KEY[:-1] + chr(ord(KEY[-1]) + 1),  # same length, last byte differs
        chr(ord(KEY[0]) + 1) + KEY[1:],  # same length, first byte differs
        KEY.upper(),
        KEY + " x",
        "a" * 10_000,
    ]


async def test_wrong_keys_get_401_and_right_keys_pass(
    keyed_app: tuple[RunningApp, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = keyed_app
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    # The stdlib function, observed (not replaced): the check must go through it.
    monkeypatch.setattr(deps.hmac, "compare_digest", spy)
    client = app.client
    assert_refusal(await client.get("/api/engines"), "unauthorized")
    for wrong in _wrong_keys():
        for headers in ({"Authorization": f"Bearer {wrong}".strip()}, {"X-API-Key": wrong}):
            resp = await client.get("/api/engines", headers=headers)
            assert resp.status_code == 401, (wrong[:20], resp.text)
            assert_refusal(resp, "unauthorized")
        resp = await client.get("/api/engines", params={"api_key": wrong})
        assert resp.status_code == 401
    # Non-ASCII bytes in the header: refused, not a 500.
    resp = await client.get("/api/engines", headers={"X-API-Key": b"\xe9\xff"})
    assert resp.status_code == 401
    # Different lengths were compared (no early exit on length before the digest).
    assert any(a != b for a, b in compared), compared

    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        assert (await client.get("/api/engines", headers=headers)).status_code == 200
    assert (await client.get("/api/engines", params={"api_key": KEY})).status_code == 200
    assert (await client.get("/healthz")).status_code == 200  # liveness stays open
    # Every API and gateway route is behind the key.
    for method, path in [
        ("GET", "/api/conversations"),
        ("GET", "/api/settings"),
        ("GET", "/api/models"),
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("POST", "/api/chat/stream"),
        ("POST", "/api/engines/start"),
        ("POST", "/api/settings/mlx/start"),
        ("POST", "/v1/chat/completions"),
    ]:
        resp = await client.request(method, path, json={"message": "x"})
        assert resp.status_code == 401, (path, resp.text)


async def test_settings_never_show_secrets(keyed_app: tuple[RunningApp, Path]) -> None:
    app, _ = keyed_app
    resp = await app.client.get("/api/settings", headers={"X-API-Key": KEY})
    assert resp.status_code == 200
    assert KEY not in resp.text and "api_key" not in resp.json()


# ------------------------------------------------------------------ engines
def _listening(pid: int) -> list[tuple[str, int]]:
    proc = psutil.Process(pid)
    return [
        (c.laddr.ip, c.laddr.port)
        for c in proc.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


async def test_engines_listen_on_loopback_with_a_minimal_environment(
    keyed_app: tuple[RunningApp, Path],
) -> None:
    app, fake = keyed_app
    resp = await app.client.post(
        "/api/engines/start", json={"model_id": f"mlx:{fake}"}, headers={"X-API-Key": KEY}
    )
    assert resp.status_code == 200, resp.text
    status = resp.json()
    pid, port = status["pid"], status["port"]
    assert status["host"] == "127.0.0.1" and status["url"].startswith("http://127.0.0.1:")
    listening = _listening(pid)
    assert listening == [("127.0.0.1", port)], listening

    environ = Path(f"/proc/{pid}/environ").read_bytes()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    names = {item.split(b"=", 1)[0] for item in environ.split(b"\0") if item}
    assert KEY.encode() not in environ and KEY.encode() not in cmdline
    assert b"sk-never-passed-on" not in environ
    assert not any(n.startswith(b"LEGAL_ASSISTANT_") for n in names), names
    assert b"OPENAI_API_KEY" not in names


# ------------------------------------------------------------------ browsers
@pytest_asyncio.fixture
async def local_app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    settings = fake_engine_settings(tmp_path, allowed_hosts=["host.docker.internal"])
    async with serve_app(settings) as app:
        yield app


async def test_cors_is_closed(local_app: RunningApp) -> None:
    client = local_app.client
    preflight = await client.options(
        "/api/chat/stream",
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers
    for path in ("/api/conversations", "/v1/models", "/api/engines", "/"):
        resp = await client.get(path, headers={"Origin": EVIL})
        assert "access-control-allow-origin" not in resp.headers, path


def _port(app: RunningApp) -> int:
    return int(app.url.rsplit(":", 1)[1])


async def test_cross_site_posts_are_refused(local_app: RunningApp) -> None:
    """A page elsewhere can make the browser POST (a "simple" request needs no
    preflight); it must not start engines or write into the history."""
    client = local_app.client
    before = (await client.get("/api/conversations")).json()
    body = b'{"message": "injected", "model_id": "mlx:smollm2-135m"}'
    # Another site, a sandboxed page, another local app (another port), another scheme.
    for origin in (EVIL, "null", "http://127.0.0.1:1", f"https://localhost:{_port(local_app)}"):
        for path, content in (
            ("/api/chat/stream", body),
            ("/api/engines/start", b'{"model_id": "mlx:smollm2-135m"}'),
            ("/api/settings/mlx/stop", b""),
            ("/v1/chat/completions", b'{"model": "mlx:smollm2-135m", "messages": []}'),
        ):
            for content_type in ("text/plain", None):
                headers = {"Origin": origin}
                if content_type:
                    headers["Content-Type"] = content_type
                resp = await client.post(path, content=content, headers=headers)
                assert resp.status_code == 403, (origin, path, resp.text)
                assert_refusal(resp, "bad_request")
        resp = await client.delete("/api/conversations/x", headers={"Origin": origin})
        assert resp.status_code == 403
    assert (await client.get("/api/conversations")).json() == before
    assert (await client.get("/api/engines")).json()["engines"] == []
    # The UI's own origin (and clients that send no Origin at all) are not affected.
    same = await client.post("/api/settings/mlx/stop", headers={"Origin": local_app.url})
    assert same.status_code == 200, same.text
    assert (await client.post("/api/settings/mlx/stop")).status_code == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("app.localhost", True),
        ("host.docker.internal", True),  # allowed_hosts
        ("evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("192.168.1.10", False),
        ("[::ffff:8.8.8.8]", False),
        ("0.0.0.0", False),
    ],
)
async def test_dns_rebinding_host_check(local_app: RunningApp, host: str, allowed: bool) -> None:
    headers = {"Host": f"{host}:{_port(local_app)}"}
    for path in ("/api/conversations", "/", "/v1/models"):
        resp = await local_app.client.get(path, headers=headers)
        if allowed:
            assert resp.status_code == 200, (host, path, resp.text)
        else:
            assert resp.status_code == 400, (host, path, resp.text)
            error = assert_refusal(resp, "bad_request")
            assert "127.0.0.1" in error["message"]


async def test_network_bind_answers_any_host_but_needs_the_key(
    keyed_app: tuple[RunningApp, Path],
) -> None:
    app, _ = keyed_app
    headers: dict[str, Any] = {"Host": "backend.lan:8000"}
    assert_refusal(await app.client.get("/api/engines", headers=headers), "unauthorized")
    resp = await app.client.get("/api/engines", headers={**headers, "X-API-Key": KEY})
    assert resp.status_code == 200
