"""Random codes and their keyed hashes.

Codes and tokens are stored only as HMAC-SHA-256 under a server key, so a copy of the
database yields no usable credential. Client secrets are random and long, so this fast
keyed hash is enough for them too (Argon2 is for people's passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import unicodedata

# Alphanumerics survive form-encoding unchanged (RFC 6749 appendix B), so Basic credentials
# built from them need no escaping by any client.
BASE62 = string.ascii_letters + string.digits
# RFC 8628 section 6.1: no vowels (no words), no look-alike characters.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_IGNORED_IN_USER_CODE = str.maketrans("", "", _DASHES + " \t\u00a0")


def random_string(length: int, alphabet: str = BASE62) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_client_id() -> str:
    return random_string(20)


def new_client_secret() -> str:
    return random_string(43)  # 256 bits


def new_pairing_code() -> str:
    return random_string(12)  # 71 bits, URL-safe, same shape as ezeep's codes


def new_device_code() -> str:
    return secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits; "-" and "_" pass form-encoding unchanged


def new_user_code() -> str:
    return random_string(USER_CODE_LENGTH, USER_CODE_ALPHABET)


def format_user_code(code: str) -> str:
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalise_user_code(typed: str) -> str | None:
    """Canonical form of what a person typed, or None if it cannot be a user code."""
    # NFKC folds full-width letters (from phone keyboards) into ASCII.
    code = unicodedata.normalize("NFKC", typed).translate(_IGNORED_IN_USER_CODE).upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


class KeyedHasher:
    """HMAC-SHA-256 under one server key; the only way codes, tokens and secrets are stored."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, value: str) -> str:
        mac = self._mac.copy()
        mac.update(value.encode())
        return mac.hexdigest()

    def matches(self, value: str, stored_hash: str) -> bool:
        return hmac.compare_digest(self(value), stored_hash)
