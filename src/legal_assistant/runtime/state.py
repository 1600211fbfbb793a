"""The engine lifecycle as an explicit state machine.

Every transition goes through `check_transition`, so an impossible move (ready → starting
without a stop, say) is a bug that fails loudly instead of a state that drifts.
"""

from __future__ import annotations

from enum import StrEnum


class EngineState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"  # process spawned, HTTP not up yet (or model being prepared)
    LOADING = "loading"  # HTTP up, model not proven loaded yet
    READY = "ready"  # the model answered a 1-token completion
    STOPPING = "stopping"
    FAILED = "failed"


_ALLOWED: dict[EngineState, frozenset[EngineState]] = {
    EngineState.STOPPED: frozenset({EngineState.STARTING}),
    EngineState.FAILED: frozenset(
        {EngineState.STARTING, EngineState.STOPPING, EngineState.STOPPED}
    ),
    EngineState.STARTING: frozenset(
        {EngineState.LOADING, EngineState.READY, EngineState.FAILED, EngineState.STOPPING}
    ),
    EngineState.LOADING: frozenset({EngineState.READY, EngineState.FAILED, EngineState.STOPPING}),
    EngineState.READY: frozenset({EngineState.STOPPING, EngineState.FAILED}),
    EngineState.STOPPING: frozenset({EngineState.STOPPED, EngineState.FAILED}),
}

ACTIVE_STATES = frozenset(
    {EngineState.STARTING, EngineState.LOADING, EngineState.READY, EngineState.STOPPING}
)


class InvalidTransition(RuntimeError):
    pass


def check_transition(old: EngineState, new: EngineState) -> None:
    if new not in _ALLOWED[old]:
        raise InvalidTransition(f"engine cannot go from {old} to {new}")
