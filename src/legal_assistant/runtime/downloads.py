"""Download a model snapshot from the Hugging Face Hub before its engine starts.

`download_snapshot` runs `legal_assistant.runtime.download_worker` as a child process and
follows its JSON lines. Why a child: a download must be stoppable at any byte — when the
user cancels, or when it stalls — and a blocking huggingface_hub call in a thread cannot be
stopped; a process group can. The child is spawned like the engines (own session, dies
with the backend: see `process.py`), so a crashed backend leaves no download running.

Rules, and why:
* stall deadline, never a total-time limit — a 40 GB model on a slow line may take hours
  and that is fine; what is not fine is a transfer that stopped moving. Any worker event
  that shows work (new bytes, hashing a partial, building the snapshot) pushes the
  deadline back; stderr chatter (retry warnings) does not. Only the worker's own start
  (Python + huggingface_hub imports) gets a longer grace: it is not the network;
* offline is decided before any network attempt (`HF_HUB_OFFLINE`), and an unreachable
  Hub fails at once with the same message: nothing to wait for;
* never a half model: the worker resumes partial files (HTTP Range) and writes the
  revision's ref only once every file is checked; we then write a completeness marker
  outside the HF cache. `complete_snapshot` is the only judge of "usable" — it trusts our
  marker, or for a snapshot another tool put in the cache, checks that the weights the
  model declares are all there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.process import die_with_parent, platform_argv
from legal_assistant.runtime.snapshots import complete_snapshot, mark_complete

_WORKER_MODULE = "legal_assistant.runtime.download_worker"
_RATE_TAU_S = 3.0  # the rate is an average over roughly the last few seconds
# Until the worker says it is up, starting Python and importing huggingface_hub (seconds on a
# loaded machine) is not a network stall: it gets at least this long.
_STARTUP_GRACE_S = 20.0
_TAIL_LINES = 40
_MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Where a download stands. `rate_bps`/`eta_s` are None until there is a rate to show."""

    done_bytes: int
    total_bytes: int | None
    rate_bps: float | None
    eta_s: float | None

    @property
    def fraction(self) -> float | None:
        if self.total_bytes is None:
            return None
        if self.total_bytes <= 0:
            return 1.0
        return min(1.0, self.done_bytes / self.total_bytes)


def hub_offline() -> bool:
    """Whether huggingface_hub would refuse the network (same variables, same values)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


# --- errors ----------------------------------------------------------------------------


def _not_found(repo: str, detail: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        detail,
        message_fr=f"❌ Modèle introuvable sur Hugging Face : mlx:{repo}. Vérifiez l'orthographe "
        "du modèle, la connexion Internet, ou utilisez un autre modèle MLX.",
        message_en=f"❌ Model not found on Hugging Face: mlx:{repo}. Check the model's "
        "spelling, the Internet connection, or pick another MLX model.",
    )


def _offline(repo: str, detail: str) -> LegalAssistantError:
    return LegalAssistantError(
        "model_not_found",
        detail,
        message_fr=f"❌ Modèle introuvable hors ligne : mlx:{repo}",
        message_en=f"❌ Model not available offline: mlx:{repo}",
    )


def _stalled(repo: str, stall_timeout_s: float, tail: list[str]) -> LegalAssistantError:
    return LegalAssistantError(
        "timeout",
        f"no progress downloading {repo} for {stall_timeout_s:g} s",
        message_fr="❌ Le téléchargement du modèle est bloqué "
        f"(aucune donnée depuis {stall_timeout_s:g} s).",
        message_en=f"❌ The model download is stalled (no data for {stall_timeout_s:g} s).",
        log_tail=tail,
    )


def _failed(kind: str, repo: str, detail: str, tail: list[str]) -> LegalAssistantError:
    if kind == "not_found":
        return _not_found(repo, detail)
    if kind in ("offline", "unreachable"):
        return _offline(repo, detail)
    if kind == "disk_full":
        fr = "❌ Espace disque insuffisant pour télécharger le modèle."
        en = "❌ Not enough disk space to download the model."
    elif kind == "interrupted":
        fr = (
            "❌ Le téléchargement du modèle a été interrompu (connexion perdue). "
            "Relancez-le : il reprendra là où il s'est arrêté."
        )
        en = "❌ The model download was interrupted (connection lost). Retry: it will resume."
    else:
        fr = (
            "❌ Le téléchargement du modèle a échoué. "
            "Relancez-le : il reprendra là où il s'est arrêté."
        )
        en = "❌ The model download failed. Retry: it will resume where it stopped."
    return LegalAssistantError(
        "provider_unavailable", detail, message_fr=fr, message_en=en, log_tail=tail
    )


# --- the download ----------------------------------------------------------------------


class _Rate:
    """Bytes per second as an exponential moving average with time constant `tau` (a
    smooth number over the last few seconds), computed on the worker's clock.

    Bias-corrected, like Adam's moments: the average starts at 0 with weight 0, so in the
    first seconds it is the mean rate since the start instead of being dragged by the first
    sample (often a tiny config file fetched between two round trips)."""

    def __init__(self, tau: float = _RATE_TAU_S) -> None:
        self.tau = tau
        self.reset(0)

    def reset(self, done: int) -> None:
        self._avg = 0.0
        self._weight = 0.0
        self._t: float | None = None
        self._done = done

    @property
    def rate(self) -> float | None:
        return self._avg / self._weight if self._weight > 0 else None

    def update(self, done: int, t: float) -> None:
        if self._t is None:
            self._t, self._done = t, done
            return
        dt = t - self._t
        if dt <= 0:
            return
        instant = max(0, done - self._done) / dt
        alpha = 1.0 - math.exp(-dt / self.tau)
        self._avg += alpha * (instant - self._avg)
        self._weight += alpha * (1.0 - self._weight)
        self._t, self._done = t, done


def _eta(done: int, total: int | None, rate: float | None) -> float | None:
    if total is None or rate is None or rate <= 0:
        return None
    return max(0, total - done) / rate


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _drain(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            tail.append(text[:2000])


async def download_snapshot(
    repo: str,
    *,
    hf_home: Path,
    progress: Callable[[DownloadProgress], None],
    stall_timeout_s: float = 60.0,
    revision: str = "main",
    python: str = sys.executable,
) -> Path:
    """Make `repo@revision` (an "org/name" Hugging Face id) a complete snapshot in
    `<hf_home>/hub` and return its directory (the `--model` argument for mlx_lm).

    Returns at once, without network, when `complete_snapshot` already accepts it. Calls
    `progress` on every update (plan, bytes, end). Raises LegalAssistantError:
    `model_not_found` (unknown repo, offline, Hub unreachable), `timeout` (no progress for
    `stall_timeout_s`), `provider_unavailable` (interrupted, disk full, other failure).
    The worker inherits this process's environment (HF_ENDPOINT, HF_TOKEN, proxies), with
    HF_HOME set to `hf_home`. Cancelling the awaiting task kills the worker's process group;
    whatever it had downloaded is resumed next time."""
    found = await asyncio.to_thread(complete_snapshot, repo, hf_home, revision)
    if found is not None:
        return found
    if hub_offline():
        raise _offline(repo, f"{repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set")

    cache_dir = hf_home / "hub"
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["HF_HOME"] = str(hf_home)
    env["PYTHONUNBUFFERED"] = "1"
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    # Privacy-first: no user-agent telemetry (and no agent-registry fetch before each run).
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    argv = [python, "-m", _WORKER_MODULE, "--repo", repo, "--cache-dir", str(cache_dir)]
    argv += ["--revision", revision]
    try:
        proc = await asyncio.create_subprocess_exec(
            *platform_argv(argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
            limit=_MAX_LINE,
        )
    except OSError as e:
        raise LegalAssistantError(
            "provider_unavailable",
            f"cannot start the download worker: {e}",
            message_fr="❌ Impossible de lancer le téléchargement du modèle.",
            message_en="❌ Could not start the model download.",
        ) from e
    assert proc.stdout is not None and proc.stderr is not None
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    stderr_task = asyncio.create_task(_drain(proc.stderr, tail), name=f"download-stderr-{proc.pid}")
    try:
        result = await _follow(proc, proc.stdout, repo, progress, stall_timeout_s, tail)
    finally:
        _kill_group(proc)  # no-op when it exited; on stall, error or cancellation it must go
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 10.0)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(stderr_task, 1.0)
    return await asyncio.to_thread(_finish, repo, hf_home, revision, result)


def _finish(repo: str, hf_home: Path, revision: str, done: dict[str, Any]) -> Path:
    """Check what the worker reports against the disk, then mark the snapshot complete."""
    commit, files = done.get("commit"), done.get("files")
    found = None
    if isinstance(commit, str) and isinstance(files, list):
        found = mark_complete(repo, hf_home, revision, commit, files)
    if found is None:
        raise _failed("other", repo, f"downloaded snapshot failed verification: {done}", [])
    return found


async def _follow(
    proc: asyncio.subprocess.Process,
    stdout: asyncio.StreamReader,
    repo: str,
    progress: Callable[[DownloadProgress], None],
    stall_timeout_s: float,
    tail: deque[str],
) -> dict[str, Any]:
    """Read the worker's events until it ends; returns its `done` event."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(stall_timeout_s, _STARTUP_GRACE_S)
    rate = _Rate()
    total: int | None = None
    done_bytes = 0
    last: DownloadProgress | None = None
    outcome: dict[str, Any] | None = None

    def report(eta_override: float | None = None) -> None:
        nonlocal last
        eta = eta_override if eta_override is not None else _eta(done_bytes, total, rate.rate)
        update = DownloadProgress(done_bytes, total, rate.rate, eta)
        if update != last:
            last = update
            progress(update)

    while True:
        try:
            async with asyncio.timeout_at(deadline):
                raw = await stdout.readline()
        except TimeoutError:
            _kill_group(proc)
            raise _stalled(repo, stall_timeout_s, list(tail)) from None
        if not raw:
            break
        try:
            event = json.loads(raw)
        except ValueError:
            tail.append(raw.decode("utf-8", "replace").rstrip()[:2000])
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        worked = True
        if kind == "plan":
            total = int(event.get("total_bytes") or 0)
            done_bytes = int(event.get("done_bytes") or 0)
            rate.reset(done_bytes)
            report()
        elif kind == "progress":
            now = int(event.get("done_bytes") or 0)
            worked = now > done_bytes
            done_bytes = now
            t = event.get("t")
            rate.update(now, float(t) if isinstance(t, int | float) else time.monotonic())
            report()
        elif kind in ("done", "error"):
            outcome = event
        if worked:
            deadline = loop.time() + stall_timeout_s

    # stdout closed: the worker is exiting. Bounded, like everything it does.
    try:
        async with asyncio.timeout(stall_timeout_s):
            code = await proc.wait()
    except TimeoutError:
        _kill_group(proc)
        raise _stalled(repo, stall_timeout_s, list(tail)) from None
    if outcome is not None and outcome.get("event") == "error":
        raise _failed(
            str(outcome.get("kind") or "other"), repo, str(outcome.get("message") or ""), list(tail)
        )
    if outcome is None or code != 0:
        raise _failed("other", repo, f"download worker exited with code {code}", list(tail))
    if total is not None:
        done_bytes = total
    report(eta_override=0.0)
    return outcome
