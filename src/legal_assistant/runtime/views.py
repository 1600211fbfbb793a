"""Status views of engines, as the API, the UI and the CLI show them (read only)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from legal_assistant.runtime.ports import LOOPBACK
from legal_assistant.runtime.state import EngineState

if TYPE_CHECKING:
    from legal_assistant.runtime.lifecycle import Engine


def engine_status(e: Engine) -> dict[str, Any]:
    pid = e.pid
    rss = e.process.rss_bytes() if e.process else None
    uptime = time.monotonic() - e.ready_at if e.ready_at and pid else None
    return {
        "id": e.id,
        "kind": e.kind,
        "model": e.ref.id,
        "state": str(e.state),
        "phase": str(e.state),
        "phase_detail": e.detail,
        "progress": e.progress,
        "running": e.state is EngineState.READY,
        "pid": pid,
        "port": e.port if pid else None,
        "host": LOOPBACK,
        "url": f"{e.base_url}/v1" if pid else None,
        "served_model": e.served_model,
        "uptime_s": uptime,
        "rss_bytes": rss,
        "memory_estimate_bytes": e.memory_estimate(),
        "weights_bytes": e.weights_bytes,
        "idle_ttl_s": e.idle_ttl(),
        "idle_expires_in_s": e.idle_expires_in(),
        "keep_alive_s": e.keep_alive_s,
        "inflight": e.inflight,
        "waiting": e.waiters,
        "draining": e.state is EngineState.DRAINING,
        "starts": e.starts,
        "failed_starts": e.failed_starts,
        "retry_in_s": e.retry_in() or None,
        "start_duration_s": e.start_duration_s,
        "last_error": e.last_error.to_dict("en") if e.last_error else None,
    }
