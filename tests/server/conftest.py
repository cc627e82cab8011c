from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from pairflow import accounts, assembly
from pairflow.oauth.jwt import TokenSigner, new_signing_key_pem
from tests.server.helpers import DIALECTS, Dialect

# Argon2id at its production cost takes ~0.2 s per hash; these tests sign in hundreds of times.
# The algorithm and code paths stay the same, only the work factor is lowered.
_FAST_PASSWORDS = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_FAST_DUMMY_HASH = _FAST_PASSWORDS.hash("pairflow-dummy-password")


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "_passwords", _FAST_PASSWORDS)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", _FAST_DUMMY_HASH)


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    return new_signing_key_pem()


@pytest.fixture(autouse=True)
def reuse_signing_key(monkeypatch: pytest.MonkeyPatch, signing_key_pem: str) -> None:
    """One RSA key for the whole session instead of a fresh 2048-bit key per test app."""
    monkeypatch.setattr(assembly, "new_signing_key_pem", lambda: signing_key_pem)
    monkeypatch.setattr(assembly, "TokenSigner", _cached_signer)


_signers: dict[tuple[str, str], TokenSigner] = {}


def _cached_signer(pem: str, issuer: str) -> TokenSigner:
    """Loading (and validating) an RSA key costs ~0.1 s; the signer holds no other state."""
    key = (pem, issuer)
    if key not in _signers:
        _signers[key] = TokenSigner(pem, issuer)
    return _signers[key]


@pytest.fixture(params=DIALECTS, ids=lambda d: d.name)
def dialect(request: pytest.FixtureRequest) -> Dialect:
    """Both protocols over the shared state machine: ezeep pairing and RFC 8628 device codes."""
    return request.param
