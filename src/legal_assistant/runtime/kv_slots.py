"""KV slots kept across swaps: llama-server's slot files on disk.

A llama.cpp engine that is stopped deliberately (switch, idle TTL, eviction, shutdown)
saves the slots that hold a prompt worth keeping (`POST /slots/N?action=save`); the next
engine for the same model file and cache-relevant flags restores them before its first
request, so the long shared prefix of a dossier conversation is not prefilled again.

Files live in one directory (llama-server's `--slot-save-path`), named
`<key>-<slot>.bin`, where the key hashes the model file's identity, the per-slot context,
the KV cache types and the llama.cpp version: a file is only ever offered to an engine
whose cache it fits. Each file has a sidecar `<key>-<slot>.json` written *after* the save
completes (tokens, bytes, sha256): a file without one is a save that did not finish.

Never serve a wrong cache (llama.cpp has restores that silently load nothing, its
#26676 and #28194). A file whose sha256 differs from its sidecar is dropped unread. After
a restore, the slot is asked to continue its own cached prompt by one greedy token (the
prompt's token ids are in the file's header): it must take them from the cache and give
the token the saving engine gave. A restore that llama-server refuses, that reports
another token count than was saved, that serves no cached tokens or another token, is
dropped and the slot erased. Every drop is logged. The directory is bounded by
`KV_CACHE_MAX_GB`: least recently saved-or-restored files go first (mtime is the clock;
a restore touches it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("legal_assistant")

# A slot shorter than this costs less to prefill again than to save and restore.
MIN_TOKENS_WORTH_SAVING = 128
_NAME = re.compile(r"^([0-9a-f]{24})-(\d{1,3})\.bin$")


def cache_key(model_path: str, *, ctx_per_slot: int, cache_type: str, version: str) -> str:
    """What a slot file must match to be restored: the same model bytes (path, size,
    mtime: hashing a multi-GB GGUF at every start would cost more than the prefill we
    save), the same per-slot context and KV types, the same llama.cpp (state format)."""
    st = os.stat(model_path)
    identity = {
        "model": os.path.realpath(model_path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctx_per_slot": ctx_per_slot,
        "cache_type": cache_type,
        "llamacpp": version,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class SlotFile:
    key: str
    slot: int
    path: Path  # the .bin llama-server reads and writes
    n_tokens: int
    sha256: str
    size: int
    mtime: float
    # The greedy next token after the cached prompt, and how many tokens came from the
    # cache, when the engine that saved the file was asked (see `probe`).
    probe_token: int = -1
    probe_cached: int = 0

    @property
    def filename(self) -> str:
        """What llama-server is given: a bare name inside its --slot-save-path."""
        return self.path.name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class SlotStore:
    """The slot directory: what is in it, its bound, its drops. Stateless beyond the
    directory itself, so every engine (and test) may hold its own instance."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def ensure(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    @staticmethod
    def filename(key: str, slot: int) -> str:
        return f"{key}-{slot}.bin"

    def files(self, key: str | None = None) -> list[SlotFile]:
        """Complete slot files (those with a sidecar), newest first."""
        found: list[SlotFile] = []
        with contextlib.suppress(FileNotFoundError):
            for path in self.root.iterdir():
                m = _NAME.match(path.name)
                if not m or (key is not None and m.group(1) != key):
                    continue
                try:
                    meta = json.loads(path.with_suffix(".json").read_text())
                    st = path.stat()
                    found.append(
                        SlotFile(
                            key=m.group(1),
                            slot=int(m.group(2)),
                            path=path,
                            n_tokens=int(meta["n_tokens"]),
                            sha256=str(meta["sha256"]),
                            size=st.st_size,
                            mtime=st.st_mtime,
                            probe_token=int(meta.get("probe_token", -1)),
                            probe_cached=int(meta.get("probe_cached", 0)),
                        )
                    )
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # no (valid) sidecar: an unfinished save, swept by drop_orphans
        return sorted(found, key=lambda f: f.mtime, reverse=True)

    def drop(self, path: Path, why: str) -> None:
        log.warning("kv slot file %s dropped: %s", path.name, why)
        path.with_suffix(".json").unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    def drop_orphans(self, key: str) -> None:
        """A .bin without a sidecar is a save that never finished: never restore it."""
        with contextlib.suppress(FileNotFoundError):
            for path in self.root.glob(f"{key}-*.bin"):
                if not path.with_suffix(".json").exists():
                    self.drop(path, "unfinished save (no sidecar)")

    def record(
        self, key: str, slot: int, n_tokens: int, probe: tuple[int, int] = (-1, 0)
    ) -> SlotFile | None:
        """Seal a file llama-server just wrote: hash it, write the sidecar atomically."""
        path = self.root / self.filename(key, slot)
        try:
            digest, size = _sha256(path), path.stat().st_size
        except OSError as e:
            log.warning("kv slot %s not saved: %s", path.name, e)
            return None
        meta = {
            "n_tokens": n_tokens,
            "sha256": digest,
            "bytes": size,
            "saved_at": time.time(),
            "probe_token": probe[0],
            "probe_cached": probe[1],
        }
        side = path.with_suffix(".json")
        tmp = side.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, side)
        st = path.stat()
        return SlotFile(key, slot, path, n_tokens, digest, st.st_size, st.st_mtime, *probe)

    def verify(self, f: SlotFile) -> bool:
        """The bytes are those that were saved (a corrupted file would load garbage KV)."""
        try:
            return _sha256(f.path) == f.sha256
        except OSError:
            return False

    def touch(self, f: SlotFile) -> None:
        with contextlib.suppress(OSError):
            os.utime(f.path)  # restored = recently used, for the LRU bound

    def total_bytes(self) -> int:
        return sum(f.size for f in self.files())

    def enforce_bound(self) -> list[Path]:
        """Evict the least recently used files until the directory fits the bound."""
        files = self.files()
        total = sum(f.size for f in files)
        evicted: list[Path] = []
        for f in reversed(files):  # oldest first
            if total <= self.max_bytes:
                break
            self.drop(f.path, f"cache bound {self.max_bytes} bytes (least recently used)")
            total -= f.size
            evicted.append(f.path)
        return evicted


# --- llama-server's slot API ----------------------------------------------------------


async def slot_list(http: httpx.AsyncClient, base_url: str) -> list[dict[str, Any]]:
    resp = await http.get(f"{base_url}/slots", timeout=10.0)
    resp.raise_for_status()
    data = resp.json()
    return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []


def slot_view(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the engine panel shows: busy or idle, and the tokens the slot holds."""
    return [
        {
            "id": s.get("id"),
            "busy": bool(s.get("is_processing")),
            "cached_tokens": int(s.get("n_prompt_tokens") or 0),
            "n_ctx": s.get("n_ctx"),
        }
        for s in raw
    ]


async def _slot_action(
    http: httpx.AsyncClient, base_url: str, slot: int, action: str, filename: str | None
) -> dict[str, Any]:
    body = {"filename": filename} if filename else {}
    resp = await http.post(
        f"{base_url}/slots/{slot}", params={"action": action}, json=body, timeout=120.0
    )
    if resp.status_code != 200:
        raise RuntimeError(f"{action} slot {slot}: HTTP {resp.status_code} {resp.text[:200]}")
    data = resp.json()
    return data if isinstance(data, dict) else {}


def slot_tokens(path: Path) -> list[int]:
    """The token ids a slot file holds, read from its header (llama.cpp's state file:
    magic, version, count, then the server's packed tokens: a NULL marker, its format
    version, the token vector; older servers wrote the plain token list)."""
    with path.open("rb") as f:
        _magic, _version, n_packed = struct.unpack("<3I", f.read(12))
        packed = struct.unpack(f"<{n_packed}i", f.read(4 * n_packed))
    if packed and packed[0] == -1:  # LLAMA_TOKEN_NULL: the versioned format
        n = packed[2]
        return list(packed[3 : 3 + n])
    return list(packed)


async def probe(
    http: httpx.AsyncClient, base_url: str, slot: int, tokens: list[int]
) -> tuple[int, int]:
    """Ask the slot to continue its own cached prompt by one greedy token: returns (the
    token, how many prompt tokens came from the cache). The same answer before the save
    and after the restore means the restored KV is the saved one; no cached tokens means
    the restore loaded nothing."""
    resp = await http.post(
        f"{base_url}/completion",
        json={
            "prompt": tokens[:-1],
            "id_slot": slot,
            "n_predict": 1,
            "temperature": 0.0,
            "cache_prompt": True,
            "return_tokens": True,
        },
        timeout=120.0,
    )
    resp.raise_for_status()
    data = resp.json()
    return int(data["tokens"][0]), int(data["timings"]["cache_n"])


async def save_slots(
    http: httpx.AsyncClient, base_url: str, store: SlotStore, key: str
) -> list[SlotFile]:
    """Save every idle slot holding a prompt worth keeping; then apply the bound."""
    if store.max_bytes <= 0:
        return []
    saved: list[SlotFile] = []
    for s in await slot_list(http, base_url):
        n = int(s.get("n_prompt_tokens") or 0)
        if s.get("is_processing") or n < MIN_TOKENS_WORTH_SAVING:
            continue
        slot = int(s["id"])
        path = store.ensure() / store.filename(key, slot)
        # Unseal first: if the save dies half-way, the file is an orphan, never restored.
        path.with_suffix(".json").unlink(missing_ok=True)
        try:
            res = await _slot_action(http, base_url, slot, "save", path.name)
            tokens = await asyncio.to_thread(slot_tokens, path)
            expected = await probe(http, base_url, slot, tokens)
        except (httpx.HTTPError, RuntimeError, ValueError, KeyError, IndexError, OSError,
                struct.error) as e:  # fmt: skip
            log.warning("kv slot %d of %s not saved: %r", slot, base_url, e)
            path.unlink(missing_ok=True)
            continue
        n_saved = int(res.get("n_saved", len(tokens)))
        sealed = await asyncio.to_thread(store.record, key, slot, n_saved, expected)
        if sealed is not None:
            saved.append(sealed)
    await asyncio.to_thread(store.enforce_bound)
    return [f for f in saved if f.path.exists()]


async def restore_slots(
    http: httpx.AsyncClient, base_url: str, store: SlotStore, key: str, n_slots: int
) -> list[SlotFile]:
    """Restore this key's verified slot files into their slots; drop any that fail."""
    await asyncio.to_thread(store.drop_orphans, key)
    restored: list[SlotFile] = []
    for f in await asyncio.to_thread(store.files, key):
        if f.slot >= n_slots:
            continue  # saved with more slots than this engine has: left to the LRU bound
        if not await asyncio.to_thread(store.verify, f):
            store.drop(f.path, "corrupted (sha256 differs from the saved one)")
            continue
        why = await _restore_one(http, base_url, f)
        if why is not None:
            store.drop(f.path, why)
            await _erase(http, base_url, f.slot)
            continue
        store.touch(f)
        restored.append(f)
        log.info("kv slot %d restored: %d tokens from %s", f.slot, f.n_tokens, f.filename)
    return restored


async def _restore_one(http: httpx.AsyncClient, base_url: str, f: SlotFile) -> str | None:
    """Restore one file and check it serves the saved cache; the reason it does not."""
    try:
        res = await _slot_action(http, base_url, f.slot, "restore", f.filename)
        got = int(res.get("n_restored", 0))
        if got <= 0 or got != f.n_tokens:
            return f"restore reported {got} cached tokens, {f.n_tokens} were saved"
        tokens = await asyncio.to_thread(slot_tokens, f.path)
        token, cached = await probe(http, base_url, f.slot, tokens)
    except (httpx.HTTPError, RuntimeError, ValueError, KeyError, IndexError, OSError,
            struct.error) as e:  # fmt: skip
        return f"llama-server refused the restore: {e!r}"
    if cached <= 0 or cached < f.probe_cached:
        return f"restored slot served {cached} cached tokens, {f.probe_cached} expected"
    if token != f.probe_token:
        return f"restored slot continues with token {token}, {f.probe_token} before the save"
    return None


async def _erase(http: httpx.AsyncClient, base_url: str, slot: int) -> None:
    try:
        await _slot_action(http, base_url, slot, "erase", None)
    except (httpx.HTTPError, RuntimeError, ValueError) as e:
        log.warning("kv slot %d of %s not erased after a failed restore: %s", slot, base_url, e)
