"""Every phase an engine can be in, and which moves between them are allowed.

Only the engine's own runner task (`lifecycle.Engine`) changes its state, always through
`check_transition`, so an impossible move is a bug that fails loudly in that one place.

    stopped ──► preparing ──► (downloading) ──► queued ──► starting ──► loading ──► ready
       ▲            │               │             │           │            │        │
       │            └───────────────┴─────────────┴───────────┴────────────┴──► failed
       │                                                                           │
       └──────── stopping ◄── draining ◄── ready                (a restart) ◄──────┘

* preparing   — resolving the model: the bundled conversion, a cached snapshot, a path.
* downloading — fetching an uncached Hub model (with progress); an hour of it is still
                "downloading", never "stopped".
* queued      — waiting for placement: room under the residency policy (another engine
                draining, the memory budget).
* starting    — process spawned, HTTP not up yet.
* loading     — HTTP up, the model not proven loaded yet.
* ready       — the model answered a 1-token completion; leases are handed out.
* draining    — no new lease; in-flight answers finish before a stop (switch, eviction,
                idle TTL, user stop).
* stopping    — the process is being stopped (signal, grace, kill of the group).
"""

from __future__ import annotations

from enum import StrEnum


class EngineState(StrEnum):
    STOPPED = "stopped"
    PREPARING = "preparing"
    DOWNLOADING = "downloading"
    QUEUED = "queued"
    STARTING = "starting"
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    STOPPING = "stopping"
    FAILED = "failed"


S = EngineState
# A start abandoned at any step (a stop, a shutdown) goes through STOPPING when a process
# may exist, else straight to STOPPED.
_ALLOWED: dict[EngineState, frozenset[EngineState]] = {
    S.STOPPED: frozenset({S.PREPARING}),
    S.FAILED: frozenset({S.PREPARING, S.STOPPED, S.STOPPING}),
    S.PREPARING: frozenset({S.DOWNLOADING, S.QUEUED, S.FAILED, S.STOPPED}),
    S.DOWNLOADING: frozenset({S.QUEUED, S.FAILED, S.STOPPED}),
    S.QUEUED: frozenset({S.STARTING, S.FAILED, S.STOPPED}),
    S.STARTING: frozenset({S.LOADING, S.READY, S.FAILED, S.STOPPING}),
    S.LOADING: frozenset({S.READY, S.FAILED, S.STOPPING}),
    S.READY: frozenset({S.DRAINING, S.STOPPING, S.FAILED}),
    S.DRAINING: frozenset({S.READY, S.STOPPING, S.FAILED}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED}),
}

# A process runs (or is being spawned / stopped) in these states.
PROCESS_STATES = frozenset({S.STARTING, S.LOADING, S.READY, S.DRAINING, S.STOPPING})
# Working towards READY, before a process exists.
PRE_SPAWN_STATES = frozenset({S.PREPARING, S.DOWNLOADING, S.QUEUED})
# Settled: nothing runs, nothing is in progress.
IDLE_STATES = frozenset({S.STOPPED, S.FAILED})


class InvalidTransition(RuntimeError):
    pass


def check_transition(old: EngineState, new: EngineState) -> None:
    if new not in _ALLOWED[old]:
        raise InvalidTransition(f"engine cannot go from {old} to {new}")
