"""Organisations, users and clients: creation rules and password checks.

Used by the admin CLI and the sign-in page. Passwords are hashed with Argon2id (slow on
purpose, run off the event loop); client secrets are random, so a keyed SHA-256 is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pairflow import audit
from pairflow.oauth.codes import KeyedHasher, new_client_id, new_client_secret, new_uuid
from pairflow.oauth.server import DEVICE_GRANT_TYPES
from pairflow.store import Client, Conflict, Organisation, Store, User

_passwords = PasswordHasher()  # argon2-cffi defaults: Argon2id, RFC 9106 low-memory profile
# Checked when the e-mail is unknown, so a wrong address costs as long as a wrong password.
# A fixed, valid Argon2id hash of a random string nobody knows; computing one at import would cost 0.2 s.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$Jq5n0d0sR5cXG8yYk0V9nqQvRk0y2Qm3v6cF1s9Jm7o"
MIN_PASSWORD_LENGTH = 8


class AccountError(ValueError):
    """A request the directory refuses, with a message for the person who made it."""


@dataclass(frozen=True)
class NewClient:
    client: Client
    secret: str | None  # shown once; only its keyed hash is stored


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email:
        raise AccountError(f"'{email}' is not an e-mail address.")
    return email


def _display_name(name: str, what: str) -> str:
    """A name people read on pages and lists: one line, printable, at most 200 characters."""
    name = " ".join(name.split())
    if not name:
        raise AccountError(f"{what} needs a name.")
    if len(name) > 200 or not name.isprintable():
        raise AccountError(f"{what} name must be printable text of at most 200 characters.")
    return name


async def create_org(store: Store, name: str, now: float) -> Organisation:
    name = _display_name(name, "An organisation")
    if any(org.name.casefold() == name.casefold() for org in await store.list_orgs()):
        raise AccountError(f"An organisation named '{name}' exists already.")
    org = Organisation(id=new_uuid(), name=name, created_at=now)
    try:
        await store.create_org(org)
    except Conflict:
        raise AccountError(f"An organisation named '{name}' exists already.") from None
    await audit.record(store, "org_created", detail=f"name={name!r}")
    return org


async def create_user(store: Store, email: str, password: str, org_name: str, now: float) -> User:
    email = normalise_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    org = await store.get_org_by_name(org_name)
    if org is None:
        raise AccountError(f"No organisation named '{org_name}'; create it with `pairflow admin org create`.")
    password_hash = await anyio.to_thread.run_sync(_passwords.hash, password)
    user = User(id=new_uuid(), email=email, password_hash=password_hash, org_id=org.id, created_at=now)
    try:
        await store.create_user(user)
    except Conflict:
        raise AccountError(f"A user with e-mail '{email}' exists already.") from None
    await audit.record(store, "user_created", user_id=user.id, detail=f"email={email!r} org={org.name!r}")
    return user


async def create_client(
    store: Store, hasher: KeyedHasher, name: str, scope: str, now: float, *, public: bool = False
) -> NewClient:
    name = _display_name(name, "A client")
    if not scope.split():
        raise AccountError("A client needs at least one scope, e.g. --scope printing.")
    secret = None if public else new_client_secret()
    client = Client(
        client_id=new_client_id(),
        name=name,
        secret_hash=hasher(secret) if secret else None,
        scope=" ".join(dict.fromkeys(scope.split())),
        grant_types=DEVICE_GRANT_TYPES,
        created_at=now,
    )
    await store.create_client(client)
    await audit.record(store, "client_created", client_id=client.client_id, detail=f"name={name!r} scope={client.scope!r}")
    return NewClient(client, secret)


async def check_password(store: Store, email: str, password: str) -> User | None:
    """The user if the e-mail and password match; None otherwise, in constant-ish time."""
    try:
        user = await store.get_user_by_email(normalise_email(email))
    except AccountError:
        user = None
    stored = user.password_hash if user else _DUMMY_HASH
    try:
        await anyio.to_thread.run_sync(_passwords.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return user
