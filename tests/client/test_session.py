"""Stored tokens: the file store, refresh rules, BearerAuth and logout."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
from conftest import (
    CREDENTIALS,
    FakeClock,
    Recorded,
    Reply,
    ScriptedServer,
    dropped,
    error,
    ok,
    seed,
    token_body,
)

from pairflow.client import (
    AnswerLostError,
    BearerAuth,
    FileStore,
    NotSignedIn,
    Session,
    Tokens,
    open_store,
)

TOKEN = "/oauth/access_token"


def session_for(store: FileStore, server: ScriptedServer, clock: FakeClock) -> Session:
    return Session(store, server.url, CREDENTIALS.client_id, clock=clock.time)


def test_token_file_is_private_atomic_and_keeps_one_entry_per_server_and_client(
    store: FileStore, server: ScriptedServer, home: Path
) -> None:
    seed(store, server, expires_at=1, access="old")
    seed(store, server, expires_at=2, access="new")

    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in home.iterdir()) == ["tokens.json", "tokens.lock"]  # no temp file left behind
    document = json.loads(store.path.read_text())
    assert document["version"] == 1
    assert [(e["server"], e["client_id"], e["access_token"]) for e in document["entries"]] == [(server.url, "device app", "new")]


def test_auto_mode_falls_back_to_the_file_with_a_warning(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRFLOW_TOKEN_STORE", "auto")
    monkeypatch.setattr("pairflow.client.storage._keyring_problem", lambda: "no OS keyring backend is available")
    chosen = open_store()
    assert chosen.backend == "file" and chosen.location == str(home / "tokens.json")
    assert chosen.warning is not None and "no OS keyring" in chosen.warning and str(home / "tokens.json") in chosen.warning


def test_a_fresh_token_is_used_without_any_request(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now + 3600)
    assert session_for(store, server, clock).token() == "access-0"
    assert server.requests == []


def test_refreshes_shortly_before_expiry_and_counts_expiry_from_sending(
    store: FileStore, server: ScriptedServer, clock: FakeClock
) -> None:
    seed(store, server, expires_at=clock.now + 30)
    sent_at = clock.now

    def slow_refresh(request: Recorded) -> Reply:
        clock.advance(10)  # the answer takes 10 s to arrive
        return ok(token_body("access-1", "refresh-1", expires_in=3600))

    server.script(TOKEN, slow_refresh)
    assert session_for(store, server, clock).token() == "access-1"

    (call,) = server.calls(TOKEN)
    assert call.form == {"grant_type": "refresh_token", "refresh_token": "refresh-0"}
    assert call.headers["authorization"].startswith("Basic ")
    stored = store.load(server.url, "device app")
    assert stored is not None
    assert (stored.tokens.access_token, stored.tokens.refresh_token) == ("access-1", "refresh-1")
    assert stored.tokens.expires_at == sent_at + 3600


def test_invalid_grant_after_another_process_rotated_uses_the_rotated_tokens(
    store: FileStore, server: ScriptedServer, clock: FakeClock
) -> None:
    seed(store, server, expires_at=clock.now - 1)

    def rotated_elsewhere(request: Recorded) -> Reply:
        # A writer that does not take our lock (an older client, say) rotated the token meanwhile.
        entry = store.load(server.url, "device app")
        assert entry is not None
        store.save(entry.with_tokens(Tokens("access-other", "Bearer", clock.now + 3600, "refresh-other", None)))
        return error("invalid_grant")

    server.script(TOKEN, rotated_elsewhere)
    assert session_for(store, server, clock).token() == "access-other"


def test_invalid_grant_without_rotation_ends_the_session(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now - 1)
    server.script(TOKEN, error("invalid_grant"))
    with pytest.raises(NotSignedIn, match="log in again"):
        session_for(store, server, clock).token()


def test_a_refresh_answer_lost_after_rotation_is_not_retried(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now - 1)
    server.script(TOKEN, dropped(), ok(token_body()))  # the server rotated, then the connection died
    with pytest.raises(AnswerLostError):
        session_for(store, server, clock).token()
    assert len(server.calls(TOKEN)) == 1
    stored = store.load(server.url, "device app")
    assert stored is not None and stored.tokens.refresh_token == "refresh-0"


def me(request: Recorded) -> Reply:
    if request.headers.get("authorization") == "Bearer access-1":
        return ok({"email": "ada@example.com"})
    return Reply(401, {"error": "invalid_token"})


def test_bearer_auth_refreshes_once_on_401_and_retries(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now + 3600)  # looks fresh, but the server revoked it
    server.script("/api/me", me)
    server.script(TOKEN, ok(token_body()))
    with httpx.Client(auth=BearerAuth(session_for(store, server, clock))) as http:
        assert http.get(f"{server.url}/api/me").json() == {"email": "ada@example.com"}
        assert http.get(f"{server.url}/api/me").status_code == 200
    assert len(server.calls(TOKEN)) == 1
    assert [c.headers["authorization"] for c in server.calls("/api/me")] == ["Bearer access-0", "Bearer access-1", "Bearer access-1"]


async def test_async_bearer_auth_refreshes_when_expired(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now + 5)
    server.script("/api/me", me)
    server.script(TOKEN, ok(token_body()))
    async with httpx.AsyncClient(auth=BearerAuth(session_for(store, server, clock))) as http:
        assert (await http.get(f"{server.url}/api/me")).status_code == 200
    assert [c.headers["authorization"] for c in server.calls("/api/me")] == ["Bearer access-1"]


def test_logout_revokes_the_refresh_token_then_forgets(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now + 3600)
    server.script("/oauth/revoke", ok({}))
    assert session_for(store, server, clock).logout() is None
    (call,) = server.calls("/oauth/revoke")
    assert call.form == {"token": "refresh-0"} and call.headers["authorization"].startswith("Basic ")
    assert store.entries() == []


def test_logout_forgets_even_when_the_server_cannot_be_told(store: FileStore, server: ScriptedServer, clock: FakeClock) -> None:
    seed(store, server, expires_at=clock.now + 3600)
    server.script("/oauth/revoke", Reply(503, raw="down"))
    assert "503" in (session_for(store, server, clock).logout() or "")
    assert store.entries() == []
