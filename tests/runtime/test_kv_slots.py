"""The slot directory on its own (real files, no server): keys, sealing, verification,
orphans and the LRU bound. The restores themselves run against the real llama-server in
test_llamacpp_slots.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

from legal_assistant.runtime.kv_slots import SlotStore, cache_key


def write_slot(store: SlotStore, key: str, slot: int, size: int, n_tokens: int = 500) -> Path:
    """What llama-server leaves after `action=save`, sealed as save_slots does."""
    path = store.ensure() / store.filename(key, slot)
    path.write_bytes(os.urandom(size))
    assert store.record(key, slot, n_tokens) is not None
    return path


def age(path: Path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_key_changes_with_the_model_file_and_cache_flags(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 100)
    base = cache_key(str(model), ctx_per_slot=4096, cache_type="f16", version="1")
    assert base == cache_key(str(model), ctx_per_slot=4096, cache_type="f16", version="1")
    assert base != cache_key(str(model), ctx_per_slot=2048, cache_type="f16", version="1")
    assert base != cache_key(str(model), ctx_per_slot=4096, cache_type="q8_0", version="1")
    assert base != cache_key(str(model), ctx_per_slot=4096, cache_type="f16", version="2")
    model.write_bytes(b"GGUF" + b"\1" * 101)  # another file at the same path
    assert base != cache_key(str(model), ctx_per_slot=4096, cache_type="f16", version="1")


def test_sealed_file_is_listed_and_verifies(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "slots", max_bytes=10_000)
    write_slot(store, "a" * 24, 0, 1000, n_tokens=321)
    [f] = store.files("a" * 24)
    assert f.slot == 0 and f.n_tokens == 321 and f.size == 1000
    assert store.verify(f)
    assert store.files("b" * 24) == []


def test_a_flipped_byte_fails_verification(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "slots", max_bytes=10_000)
    path = write_slot(store, "a" * 24, 1, 1000)
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    [f] = store.files("a" * 24)
    assert not store.verify(f)


def test_unfinished_save_is_never_listed_and_is_swept(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "slots", max_bytes=10_000)
    orphan = store.ensure() / store.filename("c" * 24, 2)
    orphan.write_bytes(b"x" * 100)  # llama-server wrote it; the sidecar never came
    assert store.files("c" * 24) == []
    store.drop_orphans("c" * 24)
    assert not orphan.exists()


def test_bound_evicts_the_least_recently_used_first(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "slots", max_bytes=2500)
    old = write_slot(store, "a" * 24, 0, 1000)
    mid = write_slot(store, "b" * 24, 0, 1000)
    new = write_slot(store, "a" * 24, 1, 1000)
    age(old, 300)
    age(mid, 200)
    age(new, 100)
    [f_old] = [f for f in store.files() if f.path == old]
    store.touch(f_old)  # restored just now: the most recently used
    evicted = store.enforce_bound()
    assert evicted == [mid]
    assert old.exists() and new.exists() and not mid.exists()
    assert not mid.with_suffix(".json").exists()
    assert store.total_bytes() == 2000


def test_a_file_larger_than_the_bound_is_not_kept(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "slots", max_bytes=500)
    big = write_slot(store, "a" * 24, 0, 1000)
    assert store.enforce_bound() == [big] and store.files() == []
