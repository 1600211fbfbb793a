"""Uploaded files under the data directory, and the streaming multipart reader that
writes them.

Layout: `<data_dir>/dossiers/<dossier_id>/files/<document_id>` (the original bytes),
`.../extracted/<document_id>.json` (pages and passages, for the viewer),
`.../briefs/<document_id>.json` (a judgment's fiche d'arrêt), `.../index/` (the retrieval
index). Paths are built only from ids this app generated (32 hex), never
from a file name: the user's file name is kept for display only, sanitised.

The upload is read from the request stream as it arrives, counted, hashed (sha256) and
written to an `.incoming-*` file; a file larger than the limit is refused (413) as soon as
its byte count crosses it, its partial copy deleted, and the rest of the body never read.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import python_multipart
from python_multipart.multipart import parse_options_header

from legal_assistant.documents.sniff import EXTENSIONS, format_from_name
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store.records import is_valid_id

MAX_FILENAME_CHARS = 180
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def sanitise_filename(raw: str) -> str:
    """A display name: the last path component only (no `/`, `\\`, `..`), NFC, without
    control characters, at most 180 characters (keeping the extension)."""
    name = unicodedata.normalize("NFC", raw)
    name = re.split(r"[/\\]", name)[-1]
    name = _SPACES.sub(" ", _CONTROL.sub("", name)).strip().lstrip(".")
    if len(name) > MAX_FILENAME_CHARS:
        stem, ext = os.path.splitext(name)
        ext = ext[:16]
        name = stem[: MAX_FILENAME_CHARS - len(ext)] + ext
    return name or "document"


def format_for(filename: str) -> str | None:
    """The document format a file name announces, or None when it is not supported.
    (Whether the content matches is checked by extraction: a mismatch fails the
    document with its reason, it is not refused at upload.)"""
    try:
        return format_from_name(filename)
    except LegalAssistantError:
        return None


def _checked(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError(f"not an id: {value[:40]!r}")
    return value


class IncomingFile:
    """One uploaded file being written: size and sha256 counted as bytes arrive."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._out = path.open("wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise LegalAssistantError(
                "file_too_large",
                f"more than {self.max_bytes} bytes",
                message_fr=f"❌ Fichier trop volumineux (maximum {self.max_bytes // 2**20} Mo).",
                message_en=f"❌ File too large (at most {self.max_bytes // 2**20} MB).",
            )
        self._hash.update(data)
        self._out.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._out.closed:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()

    def commit(self, target: Path) -> None:
        """Move into place under its document id (same directory: an atomic rename)."""
        self.close()
        os.replace(self.path, target)

    def discard(self) -> None:
        self._out.close()
        self.path.unlink(missing_ok=True)


class DossierFiles:
    """Where a dossier's files, extracted pages and index live."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "dossiers"

    def dossier_dir(self, dossier_id: str) -> Path:
        return self.root / _checked(dossier_id)

    def file_path(self, dossier_id: str, document_id: str) -> Path:
        return self.dossier_dir(dossier_id) / "files" / _checked(document_id)

    def extracted_path(self, dossier_id: str, document_id: str) -> Path:
        return self.dossier_dir(dossier_id) / "extracted" / f"{_checked(document_id)}.json"

    def brief_path(self, dossier_id: str, document_id: str) -> Path:
        return self.dossier_dir(dossier_id) / "briefs" / f"{_checked(document_id)}.json"

    def index_dir(self, dossier_id: str) -> Path:
        return self.dossier_dir(dossier_id) / "index"

    def incoming(self, dossier_id: str, max_bytes: int) -> IncomingFile:
        folder = self.dossier_dir(dossier_id) / "files"
        folder.mkdir(parents=True, exist_ok=True)
        return IncomingFile(folder / f".incoming-{uuid.uuid4().hex}", max_bytes)

    def clear_incoming(self) -> int:
        """Remove partial uploads a crash left behind (at start-up)."""
        removed = 0
        for leftover in self.root.glob("*/files/.incoming-*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def write_extracted(self, dossier_id: str, document_id: str, data: dict[str, Any]) -> None:
        path = self.extracted_path(dossier_id, document_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def read_extracted(self, dossier_id: str, document_id: str) -> dict[str, Any] | None:
        path = self.extracted_path(dossier_id, document_id)
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def remove_document(self, dossier_id: str, document_id: str) -> None:
        self.file_path(dossier_id, document_id).unlink(missing_ok=True)
        self.extracted_path(dossier_id, document_id).unlink(missing_ok=True)
        self.brief_path(dossier_id, document_id).unlink(missing_ok=True)

    def remove_dossier(self, dossier_id: str) -> None:
        shutil.rmtree(self.dossier_dir(dossier_id), ignore_errors=True)


# --------------------------------------------------------------------------- multipart


@dataclass
class ReceivedFile:
    filename: str  # sanitised display name
    format: str
    incoming: IncomingFile

    @property
    def size(self) -> int:
        return self.incoming.size

    @property
    def sha256(self) -> str:
        return self.incoming.sha256


def unsupported_type(filename: str) -> LegalAssistantError:
    return LegalAssistantError(
        "unsupported_type",
        f"{filename[:100]!r}: supported: {', '.join(sorted(EXTENSIONS))}",
        message_fr=f"❌ Type de fichier non pris en charge : {filename[:100]} (PDF, DOCX, "
        "ODT, RTF, TXT, Markdown ou HTML).",
        message_en=f"❌ Unsupported file type: {filename[:100]} (PDF, DOCX, ODT, RTF, TXT, "
        "Markdown or HTML).",
    )


def _bad_upload(detail: str) -> LegalAssistantError:
    return LegalAssistantError(
        "bad_request",
        detail,
        message_fr=f"❌ Envoi invalide : {detail}",
        message_en=f"❌ Invalid upload: {detail}",
    )


@dataclass
class _Reader:
    """python-multipart callbacks; file parts go straight to disk (sync writes of at most
    one network chunk: microseconds, not worth a thread hop per chunk)."""

    open_incoming: Any  # () -> IncomingFile
    max_files: int
    field_name: str
    charset: str = "utf-8"
    files: list[ReceivedFile] = field(default_factory=list)
    _header_name: bytes = b""
    _header_value: bytes = b""
    _disposition: bytes = b""
    _current: ReceivedFile | None = None
    complete: bool = False  # the closing boundary was read

    def on_part_begin(self) -> None:
        self._disposition, self._current = b"", None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode(self.charset, "replace")
        if name != self.field_name or b"filename" not in options:
            return  # other form fields are ignored
        raw = options[b"filename"].decode(self.charset, "replace")
        filename = sanitise_filename(raw)
        fmt = format_for(filename)
        if fmt is None:
            raise unsupported_type(filename)
        if len(self.files) >= self.max_files:
            raise _bad_upload(f"more than {self.max_files} files in one upload")
        self._current = ReceivedFile(filename, fmt, self.open_incoming())
        self.files.append(self._current)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.incoming.write(data[start:end])

    def on_part_end(self) -> None:
        current = self._current
        if current is not None and current.size == 0:
            raise LegalAssistantError(
                "empty_file",
                current.filename[:100],
                message_fr=f"❌ Le fichier est vide : {current.filename[:100]}",
                message_en=f"❌ The file is empty: {current.filename[:100]}",
            )
        if current is not None:
            current.incoming.close()

    def on_end(self) -> None:
        self.complete = True


async def receive_files(
    content_type: str,
    stream: AsyncIterator[bytes],
    open_incoming: Any,
    *,
    max_files: int,
    field_name: str = "file",
) -> list[ReceivedFile]:
    """Read a `multipart/form-data` body from `stream`, writing each `field_name` file part
    through `open_incoming()` as it arrives. All or nothing: on any refusal (415, 413, 400)
    every file of this request is deleted and the error raised; the caller stops reading."""
    mime, params = parse_options_header(content_type)
    if mime != b"multipart/form-data" or b"boundary" not in params:
        raise _bad_upload("send multipart/form-data with one or more `file` fields")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"
    reader = _Reader(open_incoming, max_files, field_name, charset)
    callbacks: Any = {
        name: getattr(reader, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    try:
        parser = python_multipart.MultipartParser(params[b"boundary"], callbacks)
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
        if not reader.complete:
            raise _bad_upload("truncated multipart body")
        if not reader.files:
            raise _bad_upload("no `file` field in the form")
    except BaseException as exc:
        for received in reader.files:
            received.incoming.discard()
        if isinstance(exc, python_multipart.exceptions.FormParserError):
            raise _bad_upload("malformed multipart body") from None
        raise
    return reader.files
