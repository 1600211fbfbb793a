"""DataDirLock against real second processes: the case it exists for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from legal_assistant.errors import LegalAssistantError
from legal_assistant.store.lock import LOCK_FILE_NAME, DataDirLock

# A second backend trying the same data directory: prints the outcome, exit code 3 if
# refused. With `hold`, keeps the lock until killed (to simulate a crash).
_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from legal_assistant.errors import LegalAssistantError
    from legal_assistant.store.lock import DataDirLock

    lock = DataDirLock(Path(sys.argv[1]))
    try:
        lock.acquire()
    except LegalAssistantError as exc:
        print(exc.code, exc.detail, flush=True)
        sys.exit(3)
    print("acquired", flush=True)
    if len(sys.argv) > 2 and sys.argv[2] == "hold":
        time.sleep(60)
    lock.release()
    """
)


def _child(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_acquire_creates_dirs_and_writes_pid(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        assert lock.held
        assert (data_dir / LOCK_FILE_NAME).read_text().strip() == str(os.getpid())
        lock.acquire()  # idempotent for the holder
        assert lock.held
    finally:
        lock.release()
    assert not lock.held
    lock.release()  # releasing twice is harmless


def test_second_process_is_refused_then_succeeds_after_release(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    lock.acquire()
    try:
        refused = _child(tmp_path)
        assert refused.returncode == 3, refused.stderr
        assert refused.stdout.startswith("data_dir_locked")
        assert f"{tmp_path} is used by pid {os.getpid()}" in refused.stdout
    finally:
        lock.release()
    allowed = _child(tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "acquired"


def test_same_process_second_lock_is_refused(tmp_path: Path) -> None:
    """flock belongs to the open file, so even a second object in one process is refused."""
    with DataDirLock(tmp_path):
        with pytest.raises(LegalAssistantError) as info:
            DataDirLock(tmp_path).acquire()
        assert info.value.code == "data_dir_locked"
        assert info.value.http_status == 409
        assert str(os.getpid()) in info.value.detail
    with DataDirLock(tmp_path) as again:
        assert again.held


def test_crashed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), "hold"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "acquired"
        with pytest.raises(LegalAssistantError) as info:
            DataDirLock(tmp_path).acquire()
        assert f"pid {holder.pid}" in info.value.detail
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    # The pid file still names the dead process, but the kernel dropped the lock.
    with DataDirLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / LOCK_FILE_NAME).read_text().strip() == str(os.getpid())


def test_lock_is_not_inherited_by_children(tmp_path: Path) -> None:
    """An engine subprocess must not keep the lock alive after the backend died."""
    with DataDirLock(tmp_path) as lock:
        fd = lock._fd
        assert fd is not None
        assert not os.get_inheritable(fd)


def test_unreadable_pid_still_gives_a_message(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        (tmp_path / LOCK_FILE_NAME).write_text("garbage")
        with pytest.raises(LegalAssistantError) as info:
            DataDirLock(tmp_path).acquire()
        assert "another process" in info.value.detail
