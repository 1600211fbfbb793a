"""Why a document could not be read: one exception type with a stable code.

Raised by format detection (`sniff.detect_format`) in the upload path, and by extraction,
inside the worker process, from where it crosses the process boundary as `{code, detail}`
and is raised again in the backend by `extract.extract_document`. Never a stack trace for
the user: the code picks the French/English message in `legal_assistant.errors`.
"""

from __future__ import annotations

from legal_assistant.errors import LegalAssistantError

DOCUMENT_ERROR_CODES = frozenset(
    {
        "unsupported_type",  # extension not one of SUPPORTED_FORMATS (415)
        "empty_file",  # zero bytes, or no text at all in a non-PDF document (400)
        "content_mismatch",  # e.g. a PNG renamed .pdf (415)
        "encrypted_pdf",  # needs a password to open
        "corrupt_file",  # the parser cannot make sense of it
        "zip_bomb",  # DOCX/ODT whose zip expands too much (checked before parsing)
        "extraction_timeout",  # wall clock or CPU limit of the worker
        "extraction_failed",  # anything else: worker crash, memory limit, parser bug
    }
)


class DocumentError(LegalAssistantError):
    """A document that cannot be ingested; `code` is one of DOCUMENT_ERROR_CODES."""

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in DOCUMENT_ERROR_CODES:
            raise ValueError(f"not a document error code: {code!r}")
        super().__init__(code, detail)
