"""Where a device keeps its tokens: the OS keyring when it works, else a private JSON file.

There is one entry per (server, client_id). Every change happens under :meth:`TokenStore.lock`, a
file lock next to the data, which the refresh logic also holds across read, request and write.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import filelock

from pairflow.client.outcomes import PairflowError, Tokens

STORE_ENV = "PAIRFLOW_TOKEN_STORE"  # file | keyring | auto
HOME_ENV = "PAIRFLOW_HOME"
KEYRING_SERVICE = "pairflow"
KEYRING_TIMEOUT = 3.0  # a locked or absent Secret Service can block forever on D-Bus
LOCK_TIMEOUT = 60.0
FORMAT_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """A signed-in device: its tokens, plus what is needed to refresh or revoke them without discovery."""

    server: str
    client_id: str
    client_secret: str | None
    token_endpoint: str
    revocation_endpoint: str | None
    userinfo_endpoint: str | None
    tokens: Tokens
    account: dict[str, Any] | None = None  # from userinfo or the token's claims, for `pairflow status`

    def with_tokens(self, tokens: Tokens) -> Entry:
        # A server that does not rotate refresh tokens omits refresh_token: keep the one we have.
        return replace(self, tokens=replace(tokens, refresh_token=tokens.refresh_token or self.tokens.refresh_token))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("tokens"))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        token_fields = ("access_token", "token_type", "expires_at", "refresh_token", "scope")
        tokens = Tokens(**{name: data.get(name) for name in token_fields})
        return cls(
            **{name: data.get(name) for name in ("server", "client_id", "client_secret", "token_endpoint")},
            revocation_endpoint=data.get("revocation_endpoint"),
            userinfo_endpoint=data.get("userinfo_endpoint"),
            tokens=tokens,
            account=data.get("account"),
        )


class StoreError(PairflowError):
    """The token store cannot be used (corrupt file, keyring refused or timed out)."""


def default_home() -> Path:
    """``$PAIRFLOW_HOME``, else ``${XDG_CONFIG_HOME:-~/.config}/pairflow``."""
    if home := os.environ.get(HOME_ENV):
        return Path(home)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "pairflow"


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is masked by umask, and an existing directory may be looser


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file: readers see the old or the new content, never half."""
    _private_dir(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


class TokenStore(ABC):
    backend: str
    home: Path
    warning: str | None = None  # set when auto mode fell back from the keyring to the file

    @property
    @abstractmethod
    def location(self) -> str: ...

    def lock(self) -> filelock.FileLock:
        _private_dir(self.home)
        return filelock.FileLock(self.home / "tokens.lock", timeout=LOCK_TIMEOUT, mode=0o600)

    def async_lock(self) -> filelock.AsyncFileLock:
        _private_dir(self.home)
        return filelock.AsyncFileLock(self.home / "tokens.lock", timeout=LOCK_TIMEOUT, mode=0o600)

    @abstractmethod
    def entries(self) -> list[Entry]: ...

    def load(self, server: str, client_id: str) -> Entry | None:
        return next((e for e in self.entries() if (e.server, e.client_id) == (server, client_id)), None)

    @abstractmethod
    def save(self, entry: Entry) -> None:
        """Insert or replace the entry for (server, client_id). Call with :meth:`lock` held."""

    @abstractmethod
    def delete(self, server: str, client_id: str) -> None:
        """Call with :meth:`lock` held."""


class FileStore(TokenStore):
    """``tokens.json``: ``{"version": 1, "entries": [Entry.to_json(), ...]}``."""

    backend = "file"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "tokens.json"

    @property
    def location(self) -> str:
        return str(self.path)

    def entries(self) -> list[Entry]:
        try:
            document = json.loads(self.path.read_bytes())
            return [Entry.from_json(item) for item in document["entries"]]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as error:
            raise StoreError(f"{self.path} is not a pairflow token file ({error}); delete it and log in again") from error

    def _write(self, entries: list[Entry]) -> None:
        document = {"version": FORMAT_VERSION, "entries": [entry.to_json() for entry in entries]}
        write_private(self.path, json.dumps(document, indent=2).encode())

    def save(self, entry: Entry) -> None:
        others = [e for e in self.entries() if (e.server, e.client_id) != (entry.server, entry.client_id)]
        self._write([*others, entry])

    def delete(self, server: str, client_id: str) -> None:
        self._write([e for e in self.entries() if (e.server, e.client_id) != (server, client_id)])


def _with_timeout(call: Callable[[], T], seconds: float = KEYRING_TIMEOUT) -> T:
    """Run a keyring call in a daemon thread so a hung backend cannot hang (or block exit of) the CLI."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(call())
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise StoreError(f"the OS keyring did not answer within {seconds:g} s")
    if failure:
        raise StoreError(f"the OS keyring failed: {failure[0]}") from failure[0]
    return result[0]


class KeyringStore(TokenStore):
    """One keyring secret per entry; a non-secret index file lists them, as keyrings cannot enumerate."""

    backend = "keyring"

    def __init__(self, home: Path) -> None:
        import keyring

        self.home = home
        self.index = home / "keyring-index.json"
        self._keyring = keyring

    @property
    def location(self) -> str:
        name = type(self._keyring.get_keyring()).__module__
        return f"service '{KEYRING_SERVICE}' in {name} (index: {self.index})"

    @staticmethod
    def _username(server: str, client_id: str) -> str:
        return f"{client_id}@{server}"

    def _keys(self) -> list[tuple[str, str]]:
        try:
            return [tuple(pair) for pair in json.loads(self.index.read_bytes())]  # type: ignore[misc]
        except FileNotFoundError:
            return []

    def entries(self) -> list[Entry]:
        found = []
        for server, client_id in self._keys():
            name = self._username(server, client_id)
            secret = _with_timeout(functools.partial(self._keyring.get_password, KEYRING_SERVICE, name))
            if secret is not None:
                found.append(Entry.from_json(json.loads(secret)))
        return found

    def save(self, entry: Entry) -> None:
        username = self._username(entry.server, entry.client_id)
        _with_timeout(lambda: self._keyring.set_password(KEYRING_SERVICE, username, json.dumps(entry.to_json())))
        keys = self._keys()
        if (entry.server, entry.client_id) not in keys:
            write_private(self.index, json.dumps([*keys, (entry.server, entry.client_id)]).encode())

    def delete(self, server: str, client_id: str) -> None:
        with contextlib.suppress(StoreError):  # already gone is fine
            _with_timeout(lambda: self._keyring.delete_password(KEYRING_SERVICE, self._username(server, client_id)))
        write_private(self.index, json.dumps([k for k in self._keys() if k != (server, client_id)]).encode())


def _keyring_problem() -> str | None:
    """Why the OS keyring is unusable, or None. Cheap checks first, so a headless box answers at once."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:
        return "the keyring package is not installed"
    try:
        backend = _with_timeout(keyring.get_keyring)
        if isinstance(backend, fail.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
            return "no OS keyring backend is available"
        _with_timeout(lambda: backend.get_password(KEYRING_SERVICE, "probe"))
    except StoreError as error:
        return str(error)
    return None


def open_store(mode: str | None = None, home: Path | None = None) -> TokenStore:
    """The token store chosen by ``mode`` (default ``$PAIRFLOW_TOKEN_STORE``, else ``auto``).

    ``auto`` keeps using an existing token file, else tries the keyring and falls back to the file
    with :attr:`TokenStore.warning` set. ``keyring`` fails if the keyring is unusable.
    """
    mode = (mode or os.environ.get(STORE_ENV) or "auto").lower()
    home = home or default_home()
    file_store = FileStore(home)
    if mode == "file" or (mode == "auto" and file_store.path.exists()):
        return file_store
    if mode not in ("keyring", "auto"):
        raise StoreError(f"{STORE_ENV} must be file, keyring or auto, not {mode!r}")
    problem = _keyring_problem()
    if problem is None:
        return KeyringStore(home)
    if mode == "keyring":
        raise StoreError(f"cannot use the OS keyring: {problem}")
    file_store.warning = f"{problem}; tokens are stored unencrypted in {file_store.path} (readable only by you)"
    return file_store
