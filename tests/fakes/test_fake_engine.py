"""Quick checks that the fake ``mlx_lm.server`` behaves as the supervisor tests assume."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from . import fake_engine

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")
START_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeProcess:
    """A running fake engine whose stderr is drained into a queue of lines."""

    def __init__(self, model: str, port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_ENGINE_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(FAKE_ENGINE),
                "--model",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--max-tokens",
                "512",  # a real mlx_lm.server flag: must be ignored
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=full_env,
            text=True,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, needle: str, timeout: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no stderr line containing {needle!r}; saw {self.seen!r}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if needle in line:
                return line

    def wait_started(self) -> str:
        return self.wait_line(f"Starting httpd at 127.0.0.1 on port {self.port}...")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


Spawn = Callable[..., FakeProcess]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start fakes with ``spawn(model, port, env)``; all are killed at teardown."""
    started: list[FakeProcess] = []

    def _spawn(model: str, port: int, env: dict[str, str] | None = None) -> FakeProcess:
        fake = FakeProcess(model, port, env)
        started.append(fake)
        return fake

    yield _spawn
    for fake in started:
        fake.stop()


def test_health_models_and_chat(spawn: Spawn, tmp_path: Path) -> None:
    spawn_log = tmp_path / "spawns.log"
    fake = spawn("mlx-community/Fake-4bit", free_port(), {"FAKE_ENGINE_SPAWN_LOG": str(spawn_log)})
    fake.wait_started()
    assert spawn_log.read_text() == f"{fake.proc.pid}\n"

    health = httpx.get(f"{fake.base_url}/health", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    models = httpx.get(f"{fake.base_url}/v1/models", timeout=5).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["mlx-community/Fake-4bit"]

    body = {
        "model": "mlx-community/Fake-4bit",
        "messages": [{"role": "user", "content": "Bonjour, une question ?"}],
        "max_tokens": 5,
    }
    resp = httpx.post(f"{fake.base_url}/v1/chat/completions", json=body, timeout=5)
    assert resp.status_code == 200
    data = resp.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == fake_engine.expected_text(5)
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}

    # Without max_tokens the answer stops by itself after `tokens` tokens.
    body = {"prompt": "Bonjour", "max_tokens": 100}
    data = httpx.post(f"{fake.base_url}/v1/completions", json=body, timeout=5).json()
    assert data["object"] == "text_completion"
    assert data["choices"][0]["text"] == fake_engine.expected_text(16)
    assert data["choices"][0]["finish_reason"] == "stop"


def test_stream_ends_with_usage_and_done(spawn: Spawn, tmp_path: Path) -> None:
    model_dir = tmp_path / "model-a"
    model_dir.mkdir()
    (model_dir / "fake_engine.json").write_text(json.dumps({"tokens": 4, "token_rate": 0}))
    # The per-model JSON file wins over the environment.
    fake = spawn(str(model_dir), free_port(), {"FAKE_ENGINE_TOKENS": "9"})
    fake.wait_started()

    body = {
        "model": str(model_dir),
        "messages": [{"role": "user", "content": "Salut"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events: list[str] = []
    with httpx.stream("POST", f"{fake.base_url}/v1/chat/completions", json=body, timeout=5) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: ") :] for line in resp.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert content == fake_engine.expected_text(4)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_wrong_model_is_404(spawn: Spawn) -> None:
    fake = spawn("served-model", free_port())
    fake.wait_started()
    body = {"model": "other-model", "messages": [{"role": "user", "content": "x"}]}
    resp = httpx.post(f"{fake.base_url}/v1/chat/completions", json=body, timeout=5)
    assert resp.status_code == 404
    assert resp.json() == {"error": "model not served: other-model"}


def test_load_delay_blocks_completions_not_health(spawn: Spawn) -> None:
    fake = spawn("m", free_port(), {"FAKE_ENGINE_LOAD_DELAY": "0.4"})
    fake.wait_started()
    started = time.monotonic()
    assert httpx.get(f"{fake.base_url}/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 0.3
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
    resp = httpx.post(f"{fake.base_url}/v1/chat/completions", json=body, timeout=5)
    assert resp.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fatal_line_makes_engine_unusable(spawn: Spawn) -> None:
    fatal = "ERROR - mlx_lm.server generation thread died: RepositoryNotFoundError x"
    fake = spawn("m", free_port(), {"FAKE_ENGINE_FATAL_LINE": fatal})
    fake.wait_started()
    fake.wait_line("generation thread died")
    body = {"messages": [{"role": "user", "content": "x"}]}
    resp = httpx.post(f"{fake.base_url}/v1/chat/completions", json=body, timeout=5)
    assert (resp.status_code, resp.json()) == (404, {"error": "generation thread died"})
    assert httpx.get(f"{fake.base_url}/health", timeout=5).status_code == 503
    assert fake.proc.poll() is None


def test_crash_at_start_exits_with_code(spawn: Spawn) -> None:
    fake = spawn("m", free_port(), {"FAKE_ENGINE_CRASH_AT_START": "3"})
    fake.wait_line("Traceback")
    assert fake.proc.wait(timeout=5) == 3


def test_crash_after_tokens_kills_stream(spawn: Spawn) -> None:
    fake = spawn("m", free_port(), {"FAKE_ENGINE_CRASH_AFTER_TOKENS": "2"})
    fake.wait_started()
    body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
    lines: list[str] = []
    url = f"{fake.base_url}/v1/chat/completions"
    # The connection may be reset rather than cleanly closed: both are fine.
    with httpx.stream("POST", url, json=body, timeout=5) as r, contextlib.suppress(httpx.HTTPError):
        lines.extend(r.iter_lines())
    contents = [line for line in lines if line.startswith("data: ")]
    assert len(contents) == 2
    assert "data: [DONE]" not in contents
    assert fake.proc.wait(timeout=5) == 1


def test_sigterm_default_and_ignored(spawn: Spawn) -> None:
    normal = spawn("m", free_port())
    stubborn = spawn("m", free_port(), {"FAKE_ENGINE_IGNORE_SIGTERM": "1"})
    normal.wait_started()
    stubborn.wait_started()

    normal.proc.send_signal(signal.SIGTERM)
    stubborn.proc.send_signal(signal.SIGTERM)
    assert normal.proc.wait(timeout=5) == -signal.SIGTERM
    assert httpx.get(f"{stubborn.base_url}/health", timeout=5).status_code == 200
    with pytest.raises(subprocess.TimeoutExpired):
        stubborn.proc.wait(timeout=0.3)
    stubborn.proc.kill()
    assert stubborn.proc.wait(timeout=5) == -signal.SIGKILL


def test_port_busy_prints_errno_and_hangs(spawn: Spawn) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fake = spawn("m", busy.getsockname()[1])
        line = fake.wait_line("Address already in use")
        assert line.startswith("OSError: [Errno ")
        assert fake.proc.poll() is None


def test_knob_priority(tmp_path: Path) -> None:
    """Defaults < FAKE_ENGINE_* env < CLI flags < <model dir>/fake_engine.json."""
    (tmp_path / "fake_engine.json").write_text(json.dumps({"tokens": 7, "fatal_line": None}))
    args, _ = fake_engine.build_parser().parse_known_args(
        ["--model", str(tmp_path), "--token-rate", "5", "--ignore-sigterm", "--temp", "0.2"]
    )
    env = {
        "FAKE_ENGINE_TOKEN_RATE": "1",
        "FAKE_ENGINE_LOAD_DELAY": "0.5",
        "FAKE_ENGINE_FATAL_LINE": "boom",
        "FAKE_ENGINE_TOKENS": "3",
    }
    config = fake_engine.resolve_config(args, env)
    assert config == fake_engine.FakeConfig(
        load_delay=0.5, ignore_sigterm=True, token_rate=5.0, tokens=7, fatal_line=None
    )
