"""Loopback ports: a free one from the OS, or a clear error naming who holds a fixed one.

The seed's answer to "port 8080 busy" was `kill -9 <PID>`. We never kill what we do not
own: we name the owner and let the user decide (or use the default: an OS-chosen port).
"""

from __future__ import annotations

import contextlib
import errno
import socket

import psutil

from legal_assistant.errors import LegalAssistantError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_owner(port: int) -> str:
    """Describe the process listening on `port` ("pid 123 (python3 -m http.server)")."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return "an unknown process"
                try:
                    proc = psutil.Process(conn.pid)
                    cmd = " ".join(proc.cmdline())[:120] or proc.name()
                    return f"pid {conn.pid} ({cmd})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    return "an unknown process"


_ENGINE_HINT = (
    "ou laissez Legal Assistant choisir un port libre (LEGAL_ASSISTANT_MLX_PORT=0)",
    "or let Legal Assistant pick a free port (LEGAL_ASSISTANT_MLX_PORT=0)",
)


def port_busy_error(
    port: int, log_tail: list[str] | None = None, *, hint: tuple[str, str] = _ENGINE_HINT
) -> LegalAssistantError:
    owner = port_owner(port)
    return LegalAssistantError(
        "port_busy",
        f"port {port} is held by {owner}",
        message_fr=f"❌ Le port {port} est déjà utilisé par {owner}. Arrêtez ce programme, "
        f"{hint[0]}.",
        message_en=f"❌ Port {port} is already used by {owner}. Stop that program, {hint[1]}.",
        log_tail=log_tail or [],
    )
