"""The ezeep pairing flow in-process: pair, approve through the pages, redeem, refresh."""

from __future__ import annotations

from tests.conftest import App
from tests.server.helpers import sign_in_and_approve


async def test_pair_approve_redeem_refresh(app: App) -> None:
    seed = app.seed
    paired = await app.http.post("/oauth/pair", headers=seed.basic(), data={"mode": "device", "scope": "printing"})
    assert paired.status_code == 200
    body = paired.json()
    pending = await app.http.post("/oauth/access_token", headers=seed.basic(), data={"grant_type": "pairing_code", "pairing_code": body["pairing_code"]})
    assert pending.json()["error"] == "authorization_pending"
    html = await sign_in_and_approve(app, body["auth_url"])
    assert "Login Successful" in html
    app.clock.advance(5)
    token = await app.http.post("/oauth/access_token/", headers=seed.basic(), data={"grant_type": "pairing_code", "pairing_code": body["pairing_code"]})
    assert token.status_code == 200, token.text
    tokens = token.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600 and tokens["scope"] == "printing"
    me = await app.http.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email"] == seed.email
    refreshed = await app.http.post("/oauth/access_token", headers=seed.basic(), data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    again = await app.http.post("/oauth/access_token", headers=seed.basic(), data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert again.json()["error"] == "invalid_grant"
