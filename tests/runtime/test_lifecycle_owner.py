"""Regression tests for the engine lifecycle with one owner (issue 11), each named after
the behaviour it guards. The fake engine (tests/fakes/fake_engine.py) stands in for
`mlx_lm.server` where a behaviour needs a misbehaving engine; the Hub stand-in
(tests/fakes/fake_hub.py) for huggingface.co, which these machines cannot reach."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from app_harness import load_fake, pid_gone, wait_until
from legal_assistant.catalog import parse_model_id
from legal_assistant.config import ModelOverride, Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime import process as process_module
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.memory import weights_size
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

fake_hub = load_fake("fake_hub")
WAIT = 20.0
MB = 1024 * 1024
REPO = "test-org/slow-mlx"


def mid(path: Path) -> str:
    return f"mlx:{path}"


def spawns(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


async def chat_once(base_url: str, served: str, content: str = "Bonjour") -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(20.0)) as client:
        return await client.post(
            f"{base_url}/v1/chat/completions",
            json={"model": served, "messages": [{"role": "user", "content": content}]},
        )


@pytest.fixture
def sup(make_sup: Callable[[Settings], Supervisor], fake_settings: Settings) -> Supervisor:
    return make_sup(fake_settings)


@pytest.fixture
def slow_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Hub stand-in serving an MLX repo at 256 kB/s: its 4 MB take ~16 s."""
    files = {
        "config.json": b'{"model_type": "fake"}',
        "model.safetensors": os.urandom(4 * MB),
    }
    with fake_hub.FakeHub({REPO: files}, throttle_bytes_per_s=256 * 1024) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        yield server


def download_workers() -> list[int]:
    pids = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "legal_assistant.runtime.download_worker" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


# ----------------------------------------------------------------------------- 1
async def test_stop_ends_a_download_within_2s_and_the_waiting_caller_is_told_stopped(
    sup: Supervisor, slow_hub: Any, fake_settings: Settings
) -> None:
    model = f"mlx:{REPO}"
    seen: list[EngineEvent] = []
    acquiring = asyncio.create_task(sup.acquire(model, on_event=seen.append))
    await wait_until(
        lambda: any(e.new is EngineState.DOWNLOADING and (e.progress or 0) > 0 for e in seen),
        WAIT,
        what="download progress",
    )
    (engine,) = sup.engines()
    assert engine.state is EngineState.DOWNLOADING  # an hour of it would still say so
    workers = download_workers()
    assert workers
    blobs = Path(fake_settings.resolved_hf_home) / "hub" / f"models--{REPO.replace('/', '--')}"

    def partial_sizes() -> list[int]:
        return [p.stat().st_size for p in blobs.rglob("*.incomplete")]

    await wait_until(lambda: any(partial_sizes()), WAIT, what="a partial file on disk")

    t0 = time.monotonic()
    await asyncio.wait_for(sup.stop(model), WAIT)
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(acquiring, WAIT)
    assert info.value.code == "engine_stopped"
    assert "arrêté" in info.value.message("fr") and "stopped" in info.value.message("en")
    assert all(pid_gone(pid) for pid in workers)
    assert engine.state is EngineState.STOPPED
    assert any(partial_sizes())  # the partial file is kept for a resume


# ----------------------------------------------------------------------------- 2
async def test_macos_watchdog_path_measures_the_engine_not_its_wrapper(
    sup: Supervisor, fake_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_module, "NEEDS_WATCHDOG", True)  # the macOS code path
    model = mid(fake_model("a", start_delay=1.5, start_cpu=0.8))
    engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    assert engine.process is not None and engine.process.watchdog

    pid = engine.pid
    assert pid is not None and pid != engine.process.pid  # not the wrapper
    real = psutil.Process(pid)
    assert "fake_engine.py" in " ".join(real.cmdline())
    wrapper = psutil.Process(engine.process.pid)
    assert "legal_assistant.runtime.watchdog" in " ".join(wrapper.cmdline())
    real_cpu = sum(real.cpu_times()[:2])
    measured = engine.process.cpu_time()
    assert measured is not None and measured >= real_cpu * 0.9 and real_cpu > 0.5
    rss = engine.process.rss_bytes()
    assert rss is not None and rss >= real.memory_info().rss
    # The registry records the engine itself, so orphan matching finds it.
    (entry,) = sup.registry.entries()
    assert entry.pid == pid and entry.argv == real.cmdline()
    await sup.stop(model)
    assert pid_gone(pid)


# ----------------------------------------------------------------------------- 3
async def test_a_slow_silent_load_is_not_a_stall(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    sup = make_sup(fake_settings.model_copy(update={"load_timeout_s": 1.0}))
    # Silent for 3x the load timeout, at 30 % of a core.
    model = mid(fake_model("slow", start_delay=3.0, start_cpu=0.3))
    engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    assert engine.state is EngineState.READY


async def test_a_silent_load_at_zero_cpu_is_a_stall(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    sup = make_sup(fake_settings.model_copy(update={"load_timeout_s": 1.0}))
    model = mid(fake_model("hung", start_delay=30.0))
    t0 = time.monotonic()
    with pytest.raises(LegalAssistantError) as info:
        await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    assert info.value.code == "timeout"
    assert 1.0 <= time.monotonic() - t0 < 10.0


# ----------------------------------------------------------------------------- 4
async def test_no_engine_record_is_dropped_while_a_request_waits_on_it(
    sup: Supervisor, fake_model: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "spawns.log"
    model = mid(fake_model("waited", start_delay=2.0, start_cpu=0.3, spawn_log=str(log)))
    first = asyncio.create_task(sup.acquire(model))
    await wait_until(lambda: bool(spawns(log)), WAIT, what="the spawn")
    engine = sup.engines()[0]
    # Many failing model ids would push the oldest records out of the engine list.
    for i in range(12):
        with pytest.raises(LegalAssistantError):
            await sup.ensure_ready(mid(tmp_path / f"missing-{i}"))
    assert sup.engine_for(engine.ref) is engine
    second = await asyncio.wait_for(sup.acquire(model), WAIT)
    lease = await asyncio.wait_for(first, WAIT)
    assert lease.engine is second.engine is engine
    assert len(spawns(log)) == 1  # never two processes for one model
    lease.release()
    second.release()
    pid = engine.pid
    await sup.shutdown()
    assert pid is not None and pid_gone(pid)


# ----------------------------------------------------------------------------- 5
async def test_fatal_patterns_apply_to_start_up_only(
    sup: Supervisor, fake_model: Callable[..., Path]
) -> None:
    model = mid(fake_model("chatty", log_prompts=True))
    engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
    pid = engine.pid
    assert engine.served_model is not None
    prompt = (
        "OSError: [Errno 98] Address already in use — generation thread died: "
        "CUDA out of memory. No module named 'mlx_lm'"
    )
    resp = await chat_once(engine.base_url, engine.served_model, prompt)
    assert resp.status_code == 200
    await wait_until(lambda: any("Address already" in ln for ln in engine.logs()), WAIT)
    resp = await chat_once(engine.base_url, engine.served_model)
    assert resp.status_code == 200
    assert engine.state is EngineState.READY and engine.pid == pid


# ----------------------------------------------------------------------------- 6
async def test_stop_answers_within_2s_whatever_else_is_starting_or_draining(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    settings = fake_settings.model_copy(
        update={"residency": "budget", "memory_budget_gb": 100.0, "drain_timeout_s": 30.0}
    )
    sup = make_sup(settings)
    a, b, c = (mid(fake_model(n, start_cpu=0.3, start_delay=d)) for n, d in
               (("a", 0.0), ("b", 0.0), ("c", 8.0)))  # fmt: skip
    held = await asyncio.wait_for(sup.acquire(a), WAIT)  # a: busy
    draining = asyncio.create_task(sup.stop(a))  # a drains (its answer is in flight)
    await wait_until(lambda: held.engine.state is EngineState.DRAINING, WAIT)
    starting = asyncio.create_task(sup.acquire(c))  # c: a slow start

    def c_starting() -> bool:
        engine = sup.engine_for(parse_model_id(c))
        return engine is not None and engine.state is EngineState.STARTING

    await wait_until(c_starting, WAIT, what="c starting")
    engine_b = await asyncio.wait_for(sup.ensure_ready(b), WAIT)

    t0 = time.monotonic()
    await asyncio.wait_for(sup.stop(b), WAIT)
    assert time.monotonic() - t0 < 2.0
    assert engine_b.state is EngineState.STOPPED

    t0 = time.monotonic()
    await asyncio.wait_for(sup.stop(c), WAIT)  # a stop ends a start too
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(LegalAssistantError):
        await starting
    assert not draining.done()  # a is still draining: its answer goes on
    held.release()
    await asyncio.wait_for(draining, WAIT)


# ----------------------------------------------------------------------------- 7
async def test_concurrent_failing_resolutions_give_the_classified_error(
    sup: Supervisor, tmp_path: Path
) -> None:
    model = mid(tmp_path / "no-such-model")
    results = await asyncio.gather(
        *(sup.ensure_ready(model) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, LegalAssistantError) for r in results), results
    assert {r.code for r in results if isinstance(r, LegalAssistantError)} == {"model_not_found"}
    # And again, while the record is failed.
    results = await asyncio.gather(
        *(sup.ensure_ready(model) for _ in range(3)), return_exceptions=True
    )
    assert {getattr(r, "code", None) for r in results} == {"model_not_found"}


# ----------------------------------------------------------------------------- 8
async def test_a_crash_soon_after_ready_counts_toward_the_crash_loop_backoff(
    sup: Supervisor, fake_model: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "spawns.log"
    model = mid(fake_model("dies-on-use", crash_after_tokens=1, spawn_log=str(log)))
    codes = []
    for _ in range(4):
        try:
            engine = await asyncio.wait_for(sup.ensure_ready(model), WAIT)
        except LegalAssistantError as err:
            codes.append(err.code)
            continue
        assert engine.served_model is not None
        with pytest.raises(httpx.HTTPError):
            await chat_once(engine.base_url, engine.served_model)
        await wait_until(lambda e=engine: e.state is EngineState.FAILED, WAIT, what="crash")
    # Two spawns, then the backoff answers at once instead of a spawn per request (a
    # third spawn only if the machine was so slow that the 1 s window passed).
    assert 2 <= len(spawns(log)) <= 3, spawns(log)
    assert codes and set(codes) == {"engine_crashed"}, codes


# ----------------------------------------------------------------------------- 10
def test_memory_estimate_of_a_single_file_gguf(tmp_path: Path) -> None:
    gguf = tmp_path / "big.gguf"
    with gguf.open("wb") as f:
        f.truncate(40 * 1024**3)  # sparse: 40 GB on paper, nothing on disk
    assert weights_size(str(gguf)) == 40 * 1024**3


async def test_budget_evicts_before_starting_a_big_model(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
) -> None:
    small = fake_model("small")
    big = fake_model("big")
    with (big / "model.safetensors").open("wb") as f:
        f.truncate(10 * 1024**3)  # sparse
    settings = fake_settings.model_copy(
        update={
            "residency": "budget",
            "memory_budget_gb": 15.0,
            "models": {mid(small): ModelOverride(memory_gb=5.0)},
        }
    )
    sup = make_sup(settings)
    first = await asyncio.wait_for(sup.ensure_ready(mid(small)), WAIT)
    pid = first.pid
    second = await asyncio.wait_for(sup.ensure_ready(mid(big)), WAIT)
    assert second.weights_bytes == 10 * 1024**3
    assert first.state is EngineState.STOPPED and pid is not None and pid_gone(pid)
