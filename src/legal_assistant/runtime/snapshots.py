"""Which model snapshots in the Hugging Face cache are usable, and the marker that says so.

A snapshot counts only when it is complete: a half-downloaded model must never reach an
engine. After a verified download, `downloads.py` writes a completeness marker outside the
HF cache (`<hf_home>/legal-assistant-complete/`), listing every file with its size;
`complete_snapshot` trusts that marker, or, for a snapshot another tool put in the cache,
checks that the weights the model declares are all there. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

MARKER_DIR = "legal-assistant-complete"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _storage(repo: str, hf_home: Path) -> Path:
    return hf_home / "hub" / ("models--" + repo.replace("/", "--"))


def _marker_path(repo: str, hf_home: Path, revision: str) -> Path:
    return hf_home / MARKER_DIR / f"{repo.replace('/', '--')}@{quote(revision, safe='')}.json"


def _resolve_commit(storage: Path, revision: str) -> str | None:
    if _COMMIT.fullmatch(revision):
        return revision
    try:
        commit = (storage / "refs" / revision).read_text().strip()
    except OSError:
        return None
    return commit if _COMMIT.fullmatch(commit) else None


def _files_present(snapshot: Path, files: object) -> bool:
    """Every `{path, size}` of a marker is in the snapshot with its size."""
    if not isinstance(files, list) or not files:
        return False
    for entry in files:
        if not isinstance(entry, dict):
            return False
        path, size = entry.get("path"), entry.get("size")
        if not isinstance(path, str) or not isinstance(size, int):
            return False
        try:
            if (snapshot / path).stat().st_size != size:  # stat follows the blob symlink
                return False
        except OSError:
            return False
    return True


def _looks_complete(snapshot: Path) -> bool:
    """A snapshot we did not download: config.json, and every shard the weight index lists
    (or, without an index, at least one safetensors file). A dangling symlink is missing."""
    if not (snapshot / "config.json").is_file():
        return False
    index = snapshot / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text()).get("weight_map")
        except (OSError, ValueError, AttributeError):
            return False
        if not isinstance(weight_map, dict) or not weight_map:
            return False
        shards = {str(name) for name in weight_map.values()}
        return all((snapshot / shard).is_file() for shard in shards)
    return any(p.is_file() for p in snapshot.glob("*.safetensors"))


def complete_snapshot(repo: str, hf_home: Path, revision: str = "main") -> Path | None:
    """The snapshot directory of `repo@revision` in `<hf_home>/hub` if it is usable, else None.

    With our marker (written after a verified download) for the commit the revision points
    to: every file it lists must still be there with its size. Without (another tool filled
    the cache): config.json and the weights, see `_looks_complete`. Never touches the
    network."""
    storage = _storage(repo, hf_home)
    commit = _resolve_commit(storage, revision)
    if commit is None:
        return None
    snapshot = storage / "snapshots" / commit
    if not snapshot.is_dir():
        return None
    marker = read_marker(repo, hf_home, revision)
    if marker is not None and marker.get("commit") == commit:
        return snapshot if _files_present(snapshot, marker.get("files")) else None
    return snapshot if _looks_complete(snapshot) else None


def read_marker(repo: str, hf_home: Path, revision: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_marker_path(repo, hf_home, revision).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(
    repo: str, hf_home: Path, revision: str, commit: str, files: list[dict[str, Any]]
) -> None:
    path = _marker_path(repo, hf_home, revision)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "repo": repo,
        "revision": revision,
        "commit": commit,
        "files": files,
        "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, path)


def mark_complete(
    repo: str, hf_home: Path, revision: str, commit: str, files: list[dict[str, Any]]
) -> Path | None:
    """After a download: if `revision` now points to `commit` and every listed file is on
    disk with its size, write the marker and return the usable snapshot; else None."""
    storage = _storage(repo, hf_home)
    if _resolve_commit(storage, revision) != commit:
        return None
    if not _files_present(storage / "snapshots" / commit, files):
        return None
    _write_marker(repo, hf_home, revision, commit, files)
    return complete_snapshot(repo, hf_home, revision)
