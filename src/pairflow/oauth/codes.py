"""Random codes and their keyed hashes.

Codes and tokens are stored only as HMAC-SHA-256 under a server key, so a copy of the
database yields no usable credential. Client secrets are random and long, so this fast
keyed hash is enough for them too (Argon2 is for people's passwords).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import string
import threading
import unicodedata
import uuid

# Alphanumerics survive form-encoding unchanged (RFC 6749 appendix B), so Basic credentials
# built from them need no escaping by any client.
BASE62 = string.ascii_letters + string.digits
# RFC 8628 section 6.1: no vowels (no words), no look-alike characters.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_IGNORED_IN_USER_CODE = str.maketrans("", "", _DASHES + " \t\u00a0")


POOL_BYTES = 4096


class RandomPool:
    """Bytes from ``os.urandom``, read 4 KiB at a time.

    ``os.urandom`` releases the GIL around its system call, and while the SQLite thread
    waits for the GIL every release can hand it over mid-request: a token request draws
    three random values, so that was three thread switches per request. Reading ahead
    makes it one call per hundred requests. The bytes are the kernel's CSPRNG output,
    each used once; a forked child drops what it inherited, so parent and child never
    hand out the same bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._used = 0
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._buffer, self._used = b"", 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._used + n > len(self._buffer):
                self._buffer, self._used = os.urandom(max(POOL_BYTES, n)), 0
            start = self._used
            self._used += n
            return self._buffer[start : self._used]


_pool = RandomPool()
random_bytes = _pool.take


def random_string(length: int, alphabet: str = BASE62) -> str:
    """``length`` characters drawn uniformly from ``alphabet`` (rejection sampling on bytes)."""
    size = len(alphabet)
    limit = 256 - 256 % size  # bytes at or above this would favour the first letters
    chosen: list[str] = []
    while len(chosen) < length:
        chosen += [alphabet[b % size] for b in random_bytes(length - len(chosen) + 8) if b < limit]
    return "".join(chosen[:length])


def token_urlsafe(nbytes: int) -> str:
    """Like ``secrets.token_urlsafe``, drawn from the pool."""
    return base64.urlsafe_b64encode(random_bytes(nbytes)).rstrip(b"=").decode()


def new_uuid() -> str:
    """A random (version 4) UUID, drawn from the pool."""
    return str(uuid.UUID(bytes=random_bytes(16), version=4))


def new_client_id() -> str:
    return random_string(20)


def new_client_secret() -> str:
    return random_string(43)  # 256 bits


def new_pairing_code() -> str:
    return random_string(12)  # 71 bits, URL-safe, same shape as ezeep's codes


def new_device_code() -> str:
    return token_urlsafe(32)


def new_refresh_token() -> str:
    return token_urlsafe(32)  # 256 bits; "-" and "_" pass form-encoding unchanged


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
