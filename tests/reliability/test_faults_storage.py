"""Fault: the data directory is unusable, full, or held by another backend.

* data directory path is a regular file, or a read-only file system → `serve` exits at
  once with one clear line, no traceback;
* disk full (a 4 MB tmpfs mounted for the test, filled up) → chat requests fail with a
  clean `storage_error` event / JSON body, never a broken stream; the /v1 gateway keeps
  serving and switching engines (it needs no disk); after space is freed and the backend
  restarted, every conversation written before is readable, unchanged, and new turns
  are saved again;
* the embedded SurrealDB directory held by a running backend → a second `serve` on the
  same directory, even reached through a symlink, is refused with the holder's pid, and
  the first backend's conversations are untouched.

Mounting needs root (the CI runs as root); without it the tmpfs tests are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_helpers import engine_processes, fake_app_settings, serve_app

from app_harness import (
    RunningApp,
    chat,
    fake_engine_command,
    fake_model_dir,
    free_port,
    hermetic_env,
    serve_command,
)


def _mount_tmpfs(target: Path, size: str, *options: str) -> None:
    opts = ",".join([f"size={size}", *options])
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)],
        check=True,
        capture_output=True,
        timeout=10,
    )


@contextlib.contextmanager
def tmpfs(target: Path, size: str, *options: str) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        _mount_tmpfs(target, size, *options)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, timeout=10)


def serve_env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return hermetic_env(
        LEGAL_ASSISTANT_DATA_DIR=str(data_dir),
        LEGAL_ASSISTANT_MODELS_DIR=str(tmp_path / "models"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_OLLAMA_URL=f"http://127.0.0.1:{free_port()}",
        LEGAL_ASSISTANT_MLX_COMMAND=json.dumps(fake_engine_command()),
        HF_HOME=str(tmp_path / "hf"),
    )


def run_serve_expecting_failure(env: dict[str, str]) -> tuple[str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(serve_command(free_port()), env=env, capture_output=True, timeout=60)
    elapsed = time.monotonic() - t0
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, (proc.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    return " ".join(stderr.split()), elapsed  # rich may fold long lines


# ----------------------------------------------------------------------------- start-up
def test_data_dir_that_is_a_regular_file_is_refused_clearly(tmp_path: Path) -> None:
    data_file = tmp_path / "not-a-dir"
    data_file.write_text("someone's file\n")
    stderr, elapsed = run_serve_expecting_failure(serve_env(tmp_path, data_file))
    assert f"Le dossier de données {data_file} est inutilisable" in stderr, stderr
    assert "File exists" in stderr or "Not a directory" in stderr, stderr
    assert elapsed < 30
    assert data_file.read_text() == "someone's file\n"  # not touched


def test_read_only_data_dir_is_refused_clearly(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", "ro") as ro:
        stderr, _ = run_serve_expecting_failure(serve_env(tmp_path, ro / "data"))
    assert "Read-only file system" in stderr, stderr
    assert "inutilisable" in stderr, stderr


# ----------------------------------------------------------------------------- disk full
def fill(directory: Path) -> Path:
    """Fill the file system of `directory` up to the last byte."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (65536, 512):  # big chunks, then the last few blocks
            with contextlib.suppress(OSError):
                while f.write(b"\0" * size):
                    pass
    return filler


async def messages_of(app: RunningApp, conversation_id: str) -> list[tuple[str, str]]:
    conv = await app.conversation(conversation_id)
    return [(m["role"], m["content"]) for m in conv["messages"]]


async def gateway_answer(app: RunningApp, model: str) -> httpx.Response:
    return await app.client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 3},
    )


def storage_error_of(turn: Any) -> dict[str, Any]:
    """The storage error a refused turn carries: as a JSON body or an SSE error event."""
    if turn.body is not None:
        assert turn.status_code == 503, (turn.status_code, turn.body)
        return dict(turn.body["error"])
    assert turn.status_code == 200 and turn.names[-1] == "error", turn.events
    # Tokens may have streamed before the answer could not be saved; never a "done".
    assert "done" not in turn.names, turn.names
    return dict(turn.events[-1][1])


async def test_disk_full_fails_requests_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    a = f"mlx:{fake_model_dir(tmp_path, 'a', tokens=4)}"
    b = f"mlx:{fake_model_dir(tmp_path, 'b', tokens=4)}"
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        settings = fake_app_settings(tmp_path, data_dir=mnt / "data")
        async with asyncio.timeout(90):
            before: dict[str, list[tuple[str, str]]] = {}
            async with serve_app(settings) as app:
                for i in range(3):
                    turn = await chat(app.client, message=f"Question {i}", model_id=a)
                    assert turn.names[-1] == "done", turn.events
                    more = await chat(
                        app.client,
                        message=f"Suite {i}",
                        model_id=a,
                        conversation_id=turn.conversation_id,
                    )
                    assert more.names[-1] == "done", more.events
                    before[turn.conversation_id] = await messages_of(app, turn.conversation_id)
                    assert len(before[turn.conversation_id]) == 4

                filler = fill(mnt)
                # The store may still have room inside the files it already allocated
                # (the dossier tables made them larger): writes succeed until that is
                # used up too, then every write is a clean refusal.
                accepted: list[str] = []  # answered in that slack: must survive too
                for i in range(60):
                    turn = await chat(app.client, timeout=15, message=f"Plein {i}", model_id=a)
                    if turn.names[-1] != "done":
                        break
                    accepted.append(turn.conversation_id)
                assert storage_error_of(turn)["code"] == "storage_error"
                # A new conversation, and one more turn in an old one: clean refusals.
                for body in (
                    {"message": "Disque plein ?", "model_id": a},
                    {"message": "Et ici ?", "model_id": a, "conversation_id": next(iter(before))},
                ):
                    t0 = time.monotonic()
                    turn = await chat(app.client, timeout=15, **body)
                    err = storage_error_of(turn)
                    assert err["code"] == "storage_error", err
                    assert "disque plein" in err["message"], err
                    assert time.monotonic() - t0 < 5
                listing = await app.client.get("/api/conversations")
                assert listing.status_code in (200, 503), listing.text
                if listing.status_code == 503:
                    assert listing.json()["error"]["code"] == "storage_error"
                # The gateway needs no disk: it keeps answering, and switching engines.
                for model in (a, b, a):
                    resp = await gateway_answer(app, model)
                    assert resp.status_code == 200, resp.text
                engines = {e.ref.id: e.state for e in app.state.supervisor.engines()}
                assert engines == {a: "ready", b: "stopped"}, engines
                assert len(engine_processes()) == 1

                filler.unlink()  # space is back; this embedded store wants a restart
                turn = await chat(app.client, message="Après", model_id=a, timeout=15)
                if turn.names[-1:] != ["done"]:
                    assert storage_error_of(turn)["code"] == "storage_error"
            assert engine_processes() == []

            async with serve_app(settings) as app:
                for conversation_id, messages in before.items():
                    assert await messages_of(app, conversation_id) == messages
                for conversation_id in accepted:
                    assert [r for r, _ in await messages_of(app, conversation_id)] == [
                        "user",
                        "assistant",
                    ]
                turn = await chat(app.client, message="De nouveau", model_id=a)
                assert turn.names[-1] == "done", turn.events
                assert [r for r, _ in await messages_of(app, turn.conversation_id)] == [
                    "user",
                    "assistant",
                ]


# ----------------------------------------------------------------------------- lock
async def test_data_dir_held_by_a_running_backend_even_through_a_symlink(
    tmp_path: Path,
) -> None:
    a = f"mlx:{fake_model_dir(tmp_path, 'a', tokens=3)}"
    settings = fake_app_settings(tmp_path)
    alias = tmp_path / "same-data"
    async with asyncio.timeout(90), serve_app(settings) as app:
        turn = await chat(app.client, message="Bonjour", model_id=a)
        assert turn.names[-1] == "done"
        saved = await messages_of(app, turn.conversation_id)
        alias.symlink_to(settings.data_dir, target_is_directory=True)
        stderr, elapsed = await asyncio.to_thread(
            run_serve_expecting_failure, serve_env(tmp_path, alias)
        )
        assert "Un autre Legal Assistant utilise déjà ce dossier de données" in stderr
        assert f"pid {os.getpid()}" in stderr, stderr
        assert elapsed < 30
        assert await messages_of(app, turn.conversation_id) == saved
        again = await chat(app.client, message="Encore", model_id=a)
        assert again.names[-1] == "done"
