"""The seed's API, kept so code written against `MLXServerService` keeps working:

    service = get_mlx_server_service()
    await service.start("mlx-community/Qwen2.5-3B-Instruct-4bit")
    service.get_status()   # {"running": True, "model": "...", "port": ..., ...}
    await service.stop()
    await ensure_mlx_server("mlx:mlx-community/Qwen2.5-3B-Instruct-4bit")

It is a thin view over the Supervisor (one process-wide instance unless the app installs
its own with `set_supervisor`).
"""

from __future__ import annotations

from typing import Any

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.config import Settings
from legal_assistant.runtime.lifecycle import Engine
from legal_assistant.runtime.ports import LOOPBACK
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

_supervisor: Supervisor | None = None
_service: MLXServerService | None = None


def get_supervisor() -> Supervisor:
    global _supervisor
    if _supervisor is None:
        _supervisor = Supervisor(Settings())
    return _supervisor


def set_supervisor(supervisor: Supervisor | None) -> None:
    global _supervisor, _service
    _supervisor = supervisor
    _service = None


def _mlx_ref(model_id: str) -> ModelRef:
    # The seed passed bare repo ids to start(); accept both forms.
    return parse_model_id(model_id if model_id.startswith("mlx:") else f"mlx:{model_id}")


class MLXServerService:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def _current(self) -> Engine | None:
        """The MLX server a user means by "the" server: the one serving, else one on its
        way (starting, draining...), else the most recently used record. A failed request
        for another model never hides the server that runs."""
        mlx = [e for e in self.supervisor.engines() if e.kind == "mlx"]
        for pool in (
            [e for e in mlx if e.state is EngineState.READY],
            [e for e in mlx if e.state not in (EngineState.STOPPED, EngineState.FAILED)],
            mlx,
        ):
            if pool:
                return max(pool, key=lambda e: e.last_used)
        return None

    async def start(self, model_id: str) -> Engine:
        return await self.supervisor.ensure_ready(_mlx_ref(model_id))

    async def stop(self) -> list[Engine]:
        return await self.supervisor.stop(None, kind="mlx")  # the MLX server only

    def get_status(self) -> dict[str, Any]:
        engine = self._current()
        if engine is None:
            return {
                "running": False,
                "model": None,
                "port": None,
                "host": LOOPBACK,
                "url": None,
                "state": str(EngineState.STOPPED),
                "pid": None,
                "uptime_s": None,
                "last_error": None,
                "engines": [],
            }
        status = engine.status()
        status["model"] = engine.ref.id
        status["engines"] = [e.status() for e in self.supervisor.engines() if e.kind == "mlx"]
        return status


def get_mlx_server_service() -> MLXServerService:
    global _service
    if _service is None:
        _service = MLXServerService(get_supervisor())
    return _service


async def ensure_mlx_server(model_id: str) -> Engine:
    return await get_mlx_server_service().start(model_id)
