"""Prometheus metrics (`GET /metrics`).

Engine gauges are read from the supervisor at scrape time (always consistent with
`/api/engines`); counters that need history (starts, failures by code, start durations)
are fed by a task listening to the engine event bus. A registry per app, so several apps
in one process (tests) never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from legal_assistant.documents.embed_queue import LANES, WAIT_BUCKETS, EmbedQueue
from legal_assistant.runtime.admission import Admission
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor


class _EngineCollector(Collector):
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "legal_assistant_engine_state",
            "1 for the engine's current lifecycle state",
            labels=["engine", "model", "state"],
        )
        inflight = GaugeMetricFamily(
            "legal_assistant_engine_inflight_requests",
            "Requests currently streaming from the engine",
            labels=["engine", "model"],
        )
        rss = GaugeMetricFamily(
            "legal_assistant_engine_rss_bytes", "Engine resident memory", labels=["engine", "model"]
        )
        for e in self.supervisor.engines():
            for s in EngineState:
                state.add_metric([e.id, e.ref.id, str(s)], 1.0 if e.state is s else 0.0)
            inflight.add_metric([e.id, e.ref.id], float(e.inflight))
            mem = e.process.rss_bytes() if e.process else None
            if mem is not None:
                rss.add_metric([e.id, e.ref.id], float(mem))
        yield state
        yield inflight
        yield rss


class _AdmissionCollector(Collector):
    """Requests running and waiting per model and user, read from admission at scrape
    time. Model ids and user ids only: no dossier or document name."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "legal_assistant_admission_requests",
            "Requests admitted (running) or queued (waiting) per model and user",
            labels=["model", "user", "state"],
        )
        for load in self.admission.users():
            gauge.add_metric([load.model, load.user, "running"], float(load.active))
            gauge.add_metric([load.model, load.user, "waiting"], float(load.waiting))
        yield gauge


class _EmbedQueueCollector(Collector):
    """The embedding queue's waits, depth and requests per lane (interactive: queries;
    bulk: ingestion), read at scrape time from the queue's own counts."""

    def __init__(self, queue: EmbedQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        waits = HistogramMetricFamily(
            "legal_assistant_embed_queue_wait_seconds",
            "Time a piece of embedding work waited for the engine, per lane",
            labels=["lane"],
        )
        depth = GaugeMetricFamily(
            "legal_assistant_embed_queue_depth", "Texts waiting for the engine", labels=["lane"]
        )
        requests = CounterMetricFamily(
            "legal_assistant_embed_requests", "Engine requests sent, per lane", labels=["lane"]
        )
        in_flight = GaugeMetricFamily(
            "legal_assistant_embed_in_flight",
            "Requests at the embedding engine now (one a worker at most), per lane",
            labels=["lane"],
        )
        for lane in LANES:
            stats = self.queue.stats[lane]
            cumulative, buckets = 0, []
            for bound, count in zip((*WAIT_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            waits.add_metric([lane], buckets, stats.wait_sum)
            depth.add_metric([lane], float(self.queue.depth(lane)))
            requests.add_metric([lane], float(stats.requests))
            in_flight.add_metric([lane], float(stats.in_flight))
        yield waits
        yield depth
        yield requests
        yield in_flight


class Metrics:
    def __init__(self, supervisor: Supervisor) -> None:
        self.registry = CollectorRegistry()
        self.supervisor = supervisor
        self.registry.register(_EngineCollector(supervisor))
        self.starts = Counter(
            "legal_assistant_engine_starts",
            "Engine starts begun",
            ["model"],
            registry=self.registry,
        )
        self.start_duration = Histogram(
            "legal_assistant_engine_start_duration_seconds",
            "From start to ready (true readiness: the model answered)",
            ["model"],
            buckets=(0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 300),
            registry=self.registry,
        )
        self.failures = Counter(
            "legal_assistant_engine_failures",
            "Engine failures by error code",
            ["code"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "legal_assistant_tokens_streamed",
            "Streamed chunks (≈ tokens) sent to clients",
            ["model"],
            registry=self.registry,
        )
        self.gateway_latency = Histogram(
            "legal_assistant_gateway_request_duration_seconds",
            "Gateway request duration, from request to last byte",
            ["route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.admission_wait = Histogram(
            "legal_assistant_admission_wait_seconds",
            "Time a request queued for its engine (fair admission), per user",
            ["user"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self._task: asyncio.Task[None] | None = None

    def admission_waited(self, model: str, user: str, seconds: float) -> None:
        self.admission_wait.labels(user).observe(seconds)

    def watch_admission(self, admission: Admission) -> None:
        self.registry.register(_AdmissionCollector(admission))

    def watch_embedding(self, queue: EmbedQueue) -> None:
        self.registry.register(_EmbedQueueCollector(queue))

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="metrics-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        with self.supervisor.bus.subscribe() as sub:
            async for ev in sub:
                if ev.old != ev.new and ev.new is EngineState.STARTING:
                    self.starts.labels(ev.model).inc()
                elif ev.old != ev.new and ev.new is EngineState.READY:
                    engine = self.supervisor.get(ev.engine)
                    if engine is not None and engine.start_duration_s is not None:
                        self.start_duration.labels(ev.model).observe(engine.start_duration_s)
                elif ev.new is EngineState.FAILED and ev.old != ev.new:
                    self.failures.labels(ev.error_code or "unknown").inc()
