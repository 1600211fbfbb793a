"""Model downloads through the real worker process and the real huggingface_hub client,
against tests/fakes/fake_hub.py (these machines cannot reach huggingface.co).

What must hold:
* progress is reported (monotonic bytes, a rate and an ETA while it runs, 1.0 at the end)
  and only the MLX files are fetched;
* a stalled transfer is killed after the stall deadline — never a total-time limit;
* an interrupted download leaves no usable snapshot and resumes (HTTP Range) next time;
* offline, unknown repo and unreachable Hub fail at once with the user's message;
* cancelling the awaiting task kills the worker;
* a snapshot another tool put in the cache is accepted only when complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from app_harness import load_fake, pid_gone, wait_until
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.downloads import DownloadProgress, download_snapshot
from legal_assistant.runtime.snapshots import complete_snapshot

fake_hub = load_fake("fake_hub")

REPO = "test-org/tiny-mlx"
MB = 1024 * 1024
FILES: dict[str, bytes] = {
    "config.json": json.dumps({"model_type": "llama", "hidden_size": 64}).encode(),
    "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE"}}).encode(),
    "model.safetensors": random.Random(1234).randbytes(3 * MB),
    "README.md": b"# tiny test model\n",
    "pytorch_model.bin": random.Random(99).randbytes(256 * 1024),  # not an MLX file
}
MLX_FILES = ["config.json", "model.safetensors", "tokenizer.json"]
TOTAL = sum(len(FILES[name]) for name in MLX_FILES)
WORKER = "legal_assistant.runtime.download_worker"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake Hub at 4 MB/s (a download takes ~1 s: progress is observable), reached by
    the worker through the environment it inherits."""
    with fake_hub.FakeHub({REPO: FILES}, throttle_bytes_per_s=4 * MB) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        yield server


def worker_pids() -> list[int]:
    """Our download workers (children of this test process)."""
    pids = []
    for child in psutil.Process().children(recursive=True):
        try:
            if WORKER in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


class Recorder:
    """A progress callback that keeps every update and notes the worker's pids once bytes
    flow (so a test can check afterwards that the process is gone)."""

    def __init__(self) -> None:
        self.updates: list[DownloadProgress] = []
        self.pids: list[int] = []
        self.flowing = asyncio.Event()
        self.last_at = 0.0

    def __call__(self, update: DownloadProgress) -> None:
        self.updates.append(update)
        self.last_at = time.monotonic()
        if update.done_bytes > 0 and not self.flowing.is_set():
            self.pids = worker_pids()
            self.flowing.set()


def blobs_dir(hf_home: Path, repo: str = REPO) -> Path:
    return hf_home / "hub" / ("models--" + repo.replace("/", "--")) / "blobs"


def lfs_gets(hub: Any) -> list[Any]:
    return [r for r in hub.requests if r.server == "cdn" and r.method == "GET"]


async def test_download_reports_progress_and_completes(hub: Any, hf_home: Path) -> None:
    record = Recorder()
    path = await download_snapshot(REPO, hf_home=hf_home, progress=record)

    updates = record.updates
    done = [u.done_bytes for u in updates]
    assert done == sorted(done), "done_bytes must never go back"
    assert updates[-1].done_bytes == updates[-1].total_bytes == TOTAL
    assert updates[-1].fraction == 1.0
    running = [u for u in updates if 0 < u.done_bytes < TOTAL]
    assert any(u.rate_bps and u.eta_s is not None for u in running), updates
    assert record.pids, "the worker was seen while bytes flowed"

    assert complete_snapshot(REPO, hf_home) == path
    assert sorted(p.name for p in path.iterdir()) == MLX_FILES
    for name in MLX_FILES:
        assert (path / name).read_bytes() == FILES[name]
    fetched = " ".join(r.path for r in hub.requests if r.method == "GET")
    assert "README.md" not in fetched and "pytorch_model.bin" not in fetched
    assert (hf_home / "legal-assistant-complete" / "test-org--tiny-mlx@main.json").is_file()

    # Complete: a second call answers from the cache, without a request.
    before = len(hub.requests)
    assert await download_snapshot(REPO, hf_home=hf_home, progress=record) == path
    assert len(hub.requests) == before

    # The marker vouches only while the files are there.
    for blob in blobs_dir(hf_home).iterdir():
        if blob.stat().st_size == len(FILES["model.safetensors"]):
            blob.unlink()
    assert complete_snapshot(REPO, hf_home) is None


async def test_a_stalled_transfer_is_killed_after_the_stall_deadline(
    hub: Any, hf_home: Path
) -> None:
    hub.stall_after_bytes = 1 * MB
    record = Recorder()
    started = time.monotonic()
    with pytest.raises(LegalAssistantError) as caught:
        await download_snapshot(REPO, hf_home=hf_home, progress=record, stall_timeout_s=1.5)
    raised_at = time.monotonic()

    assert caught.value.code == "timeout"
    assert caught.value.message_fr == (
        "❌ Le téléchargement du modèle est bloqué (aucune donnée depuis 1.5 s)."
    )
    assert hub.stalled.is_set(), "the stall happened mid-file, not before"
    assert 0 < record.updates[-1].done_bytes < TOTAL
    assert raised_at - record.last_at >= 1.45, "killed only after 1.5 s without a byte"
    assert raised_at - started < 8.0
    assert record.pids and all(pid_gone(pid) for pid in record.pids)
    await wait_until(hub.hung_up.is_set, 5.0, "the killed worker's connection to close")
    assert complete_snapshot(REPO, hf_home) is None


async def test_an_interrupted_download_resumes_with_a_range_request(
    hub: Any, hf_home: Path
) -> None:
    hub.drop_after_bytes = 1 * MB
    with pytest.raises(LegalAssistantError) as caught:
        await download_snapshot(REPO, hf_home=hf_home, progress=Recorder())
    assert caught.value.code == "provider_unavailable"
    assert "interrompu" in caught.value.message_fr
    assert hub.dropped.is_set()
    assert complete_snapshot(REPO, hf_home) is None
    partials = list(blobs_dir(hf_home).glob("*.incomplete"))
    assert len(partials) == 1
    kept = partials[0].stat().st_size
    assert 0 < kept <= 1 * MB

    # The network is back: the next attempt continues from the partial file.
    hub.drop_after_bytes = None
    first_new = len(lfs_gets(hub))
    record = Recorder()
    path = await download_snapshot(REPO, hf_home=hf_home, progress=record)
    resumed = lfs_gets(hub)[first_new:]
    assert resumed and resumed[0].headers.get("range") == f"bytes={kept}-"
    assert record.updates[0].done_bytes >= kept, "the plan counts what is already on disk"
    assert (path / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert complete_snapshot(REPO, hf_home) == path
    assert not list(blobs_dir(hf_home).glob("*.incomplete"))


async def test_a_damaged_partial_is_caught_by_its_hash_and_fetched_again(
    hub: Any, hf_home: Path
) -> None:
    """A partial whose bytes are not the file's (a crash can leave zeros at its end) must
    not become a blob: the sha256 check after resuming catches it, the file starts over."""
    weights = FILES["model.safetensors"]
    blobs = blobs_dir(hf_home)
    blobs.mkdir(parents=True)
    etag = hashlib.sha256(weights).hexdigest()
    (blobs / f"{etag}.incomplete").write_bytes(weights[: MB // 2] + bytes(MB // 2))

    path = await download_snapshot(REPO, hf_home=hf_home, progress=Recorder())
    assert (path / "model.safetensors").read_bytes() == weights
    ranges = [r.headers.get("range") for r in lfs_gets(hub)]
    assert ranges == [f"bytes={MB}-", None], "resumed first, then fetched whole"


async def test_offline_and_uncached_fails_at_once_without_a_worker(
    hub: Any, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(LegalAssistantError) as caught:
        # A worker spawn would fail loudly on this interpreter path.
        await download_snapshot(
            REPO, hf_home=hf_home, progress=Recorder(), python="/nonexistent/python"
        )
    assert time.monotonic() - started < 1.0
    assert caught.value.code == "model_not_found"
    assert "Modèle introuvable hors ligne : mlx:test-org/tiny-mlx" in caught.value.message_fr
    assert hub.requests == []


async def test_an_unknown_repo_is_model_not_found_with_the_hint(hub: Any, hf_home: Path) -> None:
    with pytest.raises(LegalAssistantError) as caught:
        await download_snapshot("test-org/does-not-exist", hf_home=hf_home, progress=Recorder())
    assert caught.value.code == "model_not_found"
    assert caught.value.message_fr == (
        "❌ Modèle introuvable sur Hugging Face : mlx:test-org/does-not-exist. Vérifiez "
        "l'orthographe du modèle, la connexion Internet, ou utilisez un autre modèle MLX."
    )
    assert complete_snapshot("test-org/does-not-exist", hf_home) is None


async def test_an_unreachable_hub_fails_fast_with_the_offline_message(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.monotonic()
    with pytest.raises(LegalAssistantError) as caught:
        await download_snapshot(REPO, hf_home=hf_home, progress=Recorder())
    assert time.monotonic() - started < 10.0
    assert caught.value.code == "model_not_found"
    assert caught.value.message_fr == "❌ Modèle introuvable hors ligne : mlx:test-org/tiny-mlx"


async def test_cancelling_the_awaiting_task_kills_the_worker(hub: Any, hf_home: Path) -> None:
    hub.throttle_bytes_per_s = 256 * 1024  # ~12 s: it is still running when cancelled
    record = Recorder()
    task = asyncio.create_task(download_snapshot(REPO, hf_home=hf_home, progress=record))
    async with asyncio.timeout(30):
        await record.flowing.wait()
    assert record.pids
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(pid_gone(pid) for pid in record.pids)
    assert worker_pids() == []
    assert complete_snapshot(REPO, hf_home) is None


def _hand_made_snapshot(hf_home: Path, repo: str, files: dict[str, bytes]) -> Path:
    """Lay a snapshot out as huggingface_hub does (blobs + relative symlinks + refs/main),
    as if another tool had downloaded it: no marker of ours."""
    storage = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (storage / "blobs").mkdir()
    for name, data in files.items():
        blob = storage / "blobs" / f"blob-{name}"
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    return snapshot


def test_a_cache_filled_by_another_tool_counts_only_when_complete(hf_home: Path) -> None:
    index = {"metadata": {}, "weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}
    sharded = "other-org/sharded"
    snapshot = _hand_made_snapshot(
        hf_home,
        sharded,
        {
            "config.json": b"{}",
            "model.safetensors.index.json": json.dumps(index).encode(),
            "model-1.safetensors": b"x" * 16,
            "model-2.safetensors": b"y" * 16,
        },
    )
    assert complete_snapshot(sharded, hf_home) == snapshot
    shard = snapshot / "model-2.safetensors"
    shard.resolve().unlink()  # the symlink now dangles: a shard is missing
    assert complete_snapshot(sharded, hf_home) is None
    shard.unlink()
    assert complete_snapshot(sharded, hf_home) is None

    single = "other-org/single"
    snapshot = _hand_made_snapshot(hf_home, single, {"config.json": b"{}"})
    assert complete_snapshot(single, hf_home) is None  # no weights at all
    (snapshot / "model.safetensors").write_bytes(b"z" * 16)
    assert complete_snapshot(single, hf_home) == snapshot
    (snapshot / "config.json").unlink()
    assert complete_snapshot(single, hf_home) is None

    assert complete_snapshot("other-org/never-downloaded", hf_home) is None
    assert complete_snapshot(single, hf_home, revision="other-branch") is None
