"""An access token lives only as long as its device session (its refresh-token family)."""

from __future__ import annotations

import re

from tests.conftest import App
from tests.server.helpers import PAIRING, approved_tokens, assert_oauth_error, csrf_of


async def me(app: App, access_token: str) -> int:
    return (await app.http.get("/api/me", headers={"Authorization": f"Bearer {access_token}"})).status_code


async def test_revoking_the_refresh_token_revokes_its_access_tokens(app: App) -> None:
    tokens = await approved_tokens(app, PAIRING)
    assert await me(app, tokens["access_token"]) == 200
    revoked = await app.http.post("/oauth/revoke", headers=app.seed.basic(), data={"token": tokens["refresh_token"]})
    assert revoked.status_code == 200
    assert await me(app, tokens["access_token"]) == 401
    introspected = await app.http.post("/oauth/introspect", headers=app.seed.basic(), data={"token": tokens["access_token"]})
    assert introspected.json() == {"active": False}


async def test_rotated_access_tokens_share_the_session(app: App) -> None:
    tokens = await approved_tokens(app, PAIRING)
    refreshed = (await app.http.post("/oauth/access_token", headers=app.seed.basic(),
                                     data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})).json()
    assert await me(app, tokens["access_token"]) == 200 and await me(app, refreshed["access_token"]) == 200
    revoked = await app.http.post("/oauth/revoke", headers=app.seed.basic(), data={"token": refreshed["refresh_token"]})
    assert revoked.status_code == 200
    assert await me(app, tokens["access_token"]) == 401 and await me(app, refreshed["access_token"]) == 401


async def test_unpairing_on_the_devices_page_signs_the_device_out(app: App) -> None:
    tokens = await approved_tokens(app, PAIRING)
    page = await app.http.get("/devices")  # the browser that approved is still signed in
    family_id = re.search(r'name="family_id" value="([^"]+)"', page.text).group(1)
    unpaired = await app.http.post("/devices", data={"csrf": csrf_of(page), "family_id": family_id})
    assert unpaired.status_code == 303
    assert await me(app, tokens["access_token"]) == 401


async def test_deleting_the_client_revokes_its_access_tokens(app: App) -> None:
    tokens = await approved_tokens(app, PAIRING)
    assert await app.runtime.store.delete_client(app.seed.client_id)
    response = await app.http.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert_oauth_error(response, 401, "invalid_token")
