"""A lean HTTP/1.1 GET client for load tests: one kept-alive connection per simulated user,
no connection pool to scan.

Why not httpx here: the benchmarks run the app and their client in one process, and
httpx's pool costs CPU that grows with the number of requests in flight (measured with
the query embedding stubbed out: 60 searches at once took p50 ~500 ms through one httpx
client against ~330 ms through these connections; docs/benchmarks.md). That CPU is the
client's, not the server's: a browser does not spend it in the backend's process.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path`; the decoded JSON body of a 200, else RuntimeError. A kept-alive
        connection the server closed meanwhile (uvicorn: after 5 s idle) is reopened and
        the request sent again, as browsers do."""
        if params:
            path = f"{path}?{urlencode(params)}"
        reused = self._streams is not None
        try:
            status, body = await self._get(path)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.aclose()
            if not reused:
                raise
            status, body = await self._get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    async def _get(self, path: str) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    async def aclose(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
