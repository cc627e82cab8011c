"""Client authentication at the token-style endpoints (RFC 6749 section 2.3).

HTTP Basic is decoded deliberately: strict Base64 (a broken header is named as such),
exactly one trailing newline tolerated (ezeep's documentation builds the value with
``echo``), and both halves form-decoded as RFC 6749 section 2.3.1 requires.
``client_secret_post`` and public clients (``client_id`` only) are accepted where allowed.
"""

from __future__ import annotations

import base64
import binascii

from pairflow.oauth.codes import KeyedHasher
from pairflow.oauth.errors import InvalidClient, InvalidRequest
from pairflow.oauth.request import OAuthRequest, form_decode
from pairflow.store import Client, Store


def parse_basic(header: str) -> tuple[str, str]:
    """``(client_id, client_secret)`` from an ``Authorization: Basic`` value."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient(f"Unsupported authorization scheme '{scheme}'; use HTTP Basic with client_id:client_secret.")
    encoded = encoded.strip()
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidClient("The Authorization header's Basic credentials are Base64 of something that is not UTF-8 text.") from None
    except (binascii.Error, ValueError):
        raise InvalidClient(
            "The Authorization header's Basic credentials are not valid Base64 "
            "(RFC 7617); encode 'client_id:client_secret' with standard Base64 and '=' padding."
        ) from None
    if decoded.endswith("\n"):
        decoded = decoded[:-1]  # `echo id:secret | base64` adds one newline; tolerate exactly one
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("The Basic credentials must be 'client_id:client_secret'; no ':' was found.")
    client_id, secret = form_decode(client_id), form_decode(secret)
    if "\x00" in client_id or "\x00" in secret:
        raise InvalidClient("The Basic credentials contain a NUL character.")
    return client_id, secret


async def authenticate_client(
    store: Store, hasher: KeyedHasher, request: OAuthRequest, *, allow_public: bool = False
) -> Client:
    """The authenticated client, or ``InvalidClient`` saying what is wrong."""
    body_id, body_secret = request.get("client_id"), request.get("client_secret")
    if request.authorization:
        if body_secret:
            raise InvalidRequest("Send client credentials either in the Authorization header or in the body, not both.")
        client_id, secret = parse_basic(request.authorization)
        if body_id and body_id != client_id:
            raise InvalidRequest("The client_id in the body differs from the one in the Authorization header.")
    elif body_id:
        client_id, secret = body_id, body_secret or ""
    else:
        raise InvalidClient("Client authentication is required: send 'Authorization: Basic base64(client_id:client_secret)'.")

    client = await store.get_client(client_id) if client_id else None
    if client is None:
        raise InvalidClient("Unknown client or wrong client secret.")
    if client.is_public:
        if not allow_public:
            raise InvalidClient("This public client cannot use this endpoint; it needs a client secret.")
        if secret:
            raise InvalidClient("This client is public and has no secret; send only client_id.")
        return client
    if not secret or not hasher.matches(secret, client.secret_hash or ""):
        raise InvalidClient("Unknown client or wrong client secret.")
    return client
