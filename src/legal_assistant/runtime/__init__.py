"""Supervising local inference servers (mlx_lm.server today; llama.cpp and vLLM next).

Imports are lazy (PEP 562) because `legal_assistant.config` needs `runtime.bundled`
while the supervisor needs the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legal_assistant.runtime.events import EngineEvent, EventBus
    from legal_assistant.runtime.lifecycle import Engine, Lease
    from legal_assistant.runtime.service import (
        MLXServerService,
        ensure_mlx_server,
        get_mlx_server_service,
    )
    from legal_assistant.runtime.state import EngineState
    from legal_assistant.runtime.supervisor import Supervisor

_EXPORTS = {
    "Engine": "engine",
    "Lease": "engine",
    "EngineEvent": "events",
    "EventBus": "events",
    "EngineState": "state",
    "Supervisor": "supervisor",
    "MLXServerService": "service",
    "get_mlx_server_service": "service",
    "ensure_mlx_server": "service",
}

__all__ = [
    "Engine",
    "EngineEvent",
    "EngineState",
    "EventBus",
    "Lease",
    "MLXServerService",
    "Supervisor",
    "ensure_mlx_server",
    "get_mlx_server_service",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f"legal_assistant.runtime.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(name)
