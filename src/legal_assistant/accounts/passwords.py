"""Password hashing: Argon2id through argon2-cffi (its RFC 9106 "low memory" defaults:
t=3, m=64 MiB, p=4), run in a worker thread so a login never stalls the event loop.

`verify` always does the same work: for an unknown or disabled user it checks the given
password against a hash of a random password, so the answer takes as long as for a real
account (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from legal_assistant.errors import LegalAssistantError

_hasher = PasswordHasher()  # Argon2id
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_strength(password: str, min_chars: int) -> None:
    if len(password) < min_chars:
        raise LegalAssistantError(
            "weak_password",
            f"at least {min_chars} characters",
            message_fr=f"❌ Mot de passe trop court : au moins {min_chars} caractères.",
            message_en=f"❌ Password too short: at least {min_chars} characters.",
        )
    if len(password) > 1024 or "\x00" in password:
        raise LegalAssistantError("bad_request", "password longer than 1024 characters or NUL")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; `stored=None` (no such user) costs the same
    and is always False."""
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
