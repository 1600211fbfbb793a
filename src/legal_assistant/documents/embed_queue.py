"""The one owner of the embedding engine's queue: interactive work before bulk work.

Everything the backend embeds goes through one `EmbedQueue` (one per `Embedder`), which
decides what the engine runs, and keeps at most `slots` requests in flight: one a worker
of the engine (embed_serve.py runs several single-threaded workers). Two lanes:

- `interactive`: queries (search, grounded chat's retrieval, the claim checker). They
  always go before waiting bulk work. Queries that reach an idle engine within
  `window_s` (a few ms) share a request; queries waiting for a worker share the next
  free one (at most `max_interactive` texts a request, spread over the workers: a big
  job, a claim check's texts, is cut so that the workers share it). The same text
  waiting twice in a request is embedded once.
- `bulk`: ingestion's passages, cut into requests sized so that one takes about
  `target_s` on a worker (the per-character cost is measured on the previous bulk
  requests). Bulk jobs of several callers (the ingestion workers) take turns.

The rule that keeps searches fast during an ingestion: **while people search** (a query
arrived within `QUIET_S`), bulk work may occupy every worker but one, so a query finds a
free worker at once and never waits behind an ingestion. While nobody searches, bulk work
takes every worker (ingestion at the engine's full rate), and the first query of a
search session waits for at most one bulk request (`target_s`). With a single worker
(`slots=1`) the queue degrades to that: a query waits for at most the request in flight.

Why decide here rather than in the engine: only the backend knows which work is
interactive (a claim checker's statement is sent as a query, a gateway client's passages
are not ingestion), and a request, once sent, cannot be pre-empted. The measurements that
chose this design are in docs/retrieval.md ("Interactive before bulk").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
# the first requests of an ingestion must not wait long).
_FIRST_BULK = 4
_EWMA = 0.3  # weight of the newest measurement of the per-character cost
# A query within this many seconds: people are searching, one worker stays free for them.
QUIET_S = 10.0

log = logging.getLogger("legal_assistant")


@dataclass
class LaneStats:
    """Cumulative counts for /metrics (read at scrape time by api/metrics.py)."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BUCKETS) + 1))
    wait_sum: float = 0.0
    waits: int = 0
    requests: int = 0
    texts: int = 0
    in_flight: int = 0  # requests at the engine now

    def observe_wait(self, seconds: float) -> None:
        self.buckets[bisect_left(WAIT_BUCKETS, seconds)] += 1
        self.wait_sum += seconds
        self.waits += 1


@dataclass(eq=False)
class _Job:
    texts: list[str]
    input_type: str
    future: asyncio.Future[Vectors]
    ready_at: float  # since when its next piece waits for a worker
    out: Vectors | None = None
    sent: int = 0  # texts sent to the engine so far
    finished: int = 0  # texts embedded so far

    @property
    def live(self) -> bool:
        return not self.future.done()


@dataclass(eq=False)
class _Slice:
    job: _Job
    start: int
    end: int


@dataclass(eq=False)
class _Piece:
    """One engine request: slices of jobs of one lane and input type (interactive: small
    jobs whole, a big one cut; bulk: a slice of one job)."""

    lane: Lane
    slices: list[_Slice]
    texts: list[str]  # what is sent: each distinct text once
    rows: list[int]  # for each text of the slices, in order, its row in `texts`
    input_type: str

    @classmethod
    def of(cls, lane: Lane, slices: list[_Slice]) -> _Piece:
        distinct: dict[str, int] = {}
        rows = [
            distinct.setdefault(text, len(distinct))
            for s in slices
            for text in s.job.texts[s.start : s.end]
        ]
        return cls(lane, slices, list(distinct), rows, slices[0].job.input_type)


class EmbedQueue:
    def __init__(
        self,
        send: Send,
        *,
        dimension: int,
        max_batch: int,
        target_s: float,
        slots: int = 1,
        window_s: float = 0.003,
        max_interactive: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._clock = clock  # what request durations and waits are measured with
        self.dimension = dimension
        self.max_batch = max(1, max_batch)
        self.target_s = target_s
        self.slots = max(1, slots)
        self.window_s = window_s
        self.max_interactive = max(1, max_interactive)
        self.stats: dict[Lane, LaneStats] = {lane: LaneStats() for lane in LANES}
        self._interactive: deque[_Job] = deque()
        self._bulk: deque[_Job] = deque()  # jobs with texts not sent yet
        self._seconds_per_char: float | None = None  # measured on bulk requests
        self._last_query = float("-inf")  # when interactive work last arrived
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        # Interactive texts waiting when the dispatcher last started filling free workers:
        # the requests it sends before it waits again share them evenly.
        self._round: int | None = None

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
        return sum(len(j.texts) - j.sent for j in jobs if j.live)

    def searching(self) -> bool:
        """Whether people search now (a query within QUIET_S): a worker is kept for them."""
        return self._clock() - self._last_query <= QUIET_S

    async def aclose(self) -> None:
        task, self._task = self._task, None
        running = [task, *self._requests] if task is not None else [*self._requests]
        for t in running:
            t.cancel()
        for t in running:
            with contextlib.suppress(asyncio.CancelledError):
                await t
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
            for lane in LANES:
                self.stats[lane].in_flight = 0
            self._requests.clear()
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._dispatch(), name="embed-queue")
        assert self._wake is not None
        return self._wake

    def _busy(self) -> int:
        return sum(self.stats[lane].in_flight for lane in LANES)

    async def _dispatch(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            for jobs in (self._interactive, self._bulk):
                if any(not j.live for j in jobs):  # cancelled by their callers
                    kept = [j for j in jobs if j.live]
                    jobs.clear()
                    jobs.extend(kept)
            try:
                piece = self._next_piece()
            except Exception:  # a bug here must not stop every later embedding
                log.exception("embedding queue")
                piece = None
            if piece is None:
                self._round = None
                wake.clear()
                await wake.wait()
                if self._interactive and self.window_s > 0 and not self._busy():
                    # The engine was idle: let the queries sent together arrive.
                    await asyncio.sleep(self.window_s)
                continue
            self._start(piece)

    def _next_piece(self) -> _Piece | None:
        free = self.slots - self._busy()
        if free <= 0:
            return None
        if self._interactive:
            return self._interactive_piece()
        bulk_slots = self.slots - 1 if self.slots > 1 and self.searching() else self.slots
        if self._bulk and self.stats["bulk"].in_flight < bulk_slots:
            return self._bulk_piece()
        return None

    def _interactive_piece(self) -> _Piece:
        """The first waiting texts of the first job's input type, spread over every
        worker (the busy ones free soon: a burst's last requests end together), at most
        `max_interactive` a request: small jobs go whole, a big one (a claim check's
        statements and passages) is cut so the workers share it."""
        kind = self._interactive[0].input_type
        jobs = [j for j in self._interactive if j.input_type == kind]
        if self._round is None:  # what waited when this round of requests began
            self._round = sum(len(j.texts) - j.sent for j in jobs)
        share = min(self.max_interactive, max(1, math.ceil(self._round / self.slots)))
        slices: list[_Slice] = []
        count = 0
        for job in jobs:
            take = min(len(job.texts) - job.sent, share - count)
            if take <= 0:
                break
            slices.append(_Slice(job, job.sent, job.sent + take))
            job.sent += take
            count += take
            if job.sent == len(job.texts):
                self._interactive.remove(job)
        return _Piece.of("interactive", slices)

    def _bulk_piece(self) -> _Piece:
        """The next slice of the first bulk job, then that job goes to the back (the other
        ingestion's turn); a job whose texts are all sent leaves the lane."""
        job = self._bulk.popleft()
        taken = len(self._cut(job.texts[job.sent :]))
        piece = _Piece.of("bulk", [_Slice(job, job.sent, job.sent + taken)])
        job.sent += taken
        if job.sent < len(job.texts):
            self._bulk.append(job)
        return piece

    def _cut(self, texts: list[str]) -> list[str]:
        """The longest prefix (at least one text, at most `max_batch`) whose estimated
        time stays within `target_s`."""
        if self._seconds_per_char is None:
            return texts[: min(_FIRST_BULK, self.max_batch)]
        budget = self.target_s / max(self._seconds_per_char, 1e-9)  # characters
        taken, chars = 0, 0
        for text in texts[: self.max_batch]:
            chars += max(1, len(text))
            if taken and chars > budget:
                break
            taken += 1
        return texts[:taken]

    def _start(self, piece: _Piece) -> None:
        stats = self.stats[piece.lane]
        now = self._clock()
        for job in {id(s.job): s.job for s in piece.slices}.values():
            stats.observe_wait(now - job.ready_at)
            job.ready_at = now  # the job's next slice is ready from now on
        stats.requests += 1
        stats.texts += len(piece.texts)
        stats.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(piece))
        self._requests.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._requests.discard(done)
            stats.in_flight -= 1
            if self._wake is not None:
                self._wake.set()  # a worker is free

        task.add_done_callback(finished)

    async def _run(self, piece: _Piece) -> None:
        if not any(s.job.live for s in piece.slices):
            return  # every caller gave up while it waited
        started = self._clock()
        try:
            vectors = await self._send(piece.texts, piece.input_type)
        except asyncio.CancelledError:
            for s in piece.slices:
                s.job.future.cancel()
            raise
        except Exception as exc:
            for s in piece.slices:
                if s.job.live:
                    s.job.future.set_exception(exc)
            return
        if piece.lane == "bulk":
            self._learn(self._clock() - started, sum(max(1, len(t)) for t in piece.texts))
        at = 0
        for s in piece.slices:
            job, n = s.job, s.end - s.start
            rows, at = piece.rows[at : at + n], at + n
            if not job.live:
                continue
            if job.out is None:
                job.out = np.zeros((len(job.texts), self.dimension), dtype=np.float32)
            job.out[s.start : s.end] = vectors[rows]
            job.finished += n
            if job.finished == len(job.texts):
                _resolve(job, job.out)

    def _learn(self, seconds: float, chars: int) -> None:
        measured = seconds / max(1, chars)
        old = self._seconds_per_char
        self._seconds_per_char = measured if old is None else old + _EWMA * (measured - old)


def _resolve(job: _Job, vectors: Vectors) -> None:
    if job.live:
        job.future.set_result(vectors)
