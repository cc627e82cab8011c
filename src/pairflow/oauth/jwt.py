"""RS256 access tokens (JWT) and the JWKS that publishes their public key."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from pairflow.oauth.codes import token_urlsafe

ALGORITHM = "RS256"


def new_signing_key_pem() -> str:
    """A fresh 2048-bit RSA key as PKCS#8 PEM, the form kept in the store."""
    key = RSAKey.generate_key(2048, private=True)
    return key.as_pem(private=True).decode()


class TokenSigner:
    """Signs and verifies access tokens with one RSA key, named by its ``kid``."""

    def __init__(self, private_pem: str, issuer: str) -> None:
        probe = RSAKey.import_key(private_pem)
        # The kid is the key's RFC 7638 thumbprint: stable across processes and restarts.
        self.kid = probe.thumbprint()
        self._key = RSAKey.import_key(private_pem, parameters={"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        self._header_segment = _b64url(orjson.dumps({"typ": "JWT", "alg": ALGORITHM, "kid": self.kid}))
        self._private_key = self._key.private_key
        self.issuer = issuer

    def sign(self, claims: dict[str, Any]) -> str:
        # RFC 7515 compact serialisation by hand: the header is the same for every token, and
        # joserfc's generic encode path costs a third as much again as the RSA signature itself.
        # Verification stays with joserfc here; the interop tests verify with Authlib and openid-client.
        signing_input = self._header_segment + b"." + _b64url(orjson.dumps(claims))
        signature = self._private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64url(signature)).decode()

    def verify(self, token: str, now: float) -> dict[str, Any]:
        """The token's claims if it is ours, untampered and unexpired; else ``ValueError``."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError):
            raise ValueError("it is not a valid access token from this server, or it was altered") from None
        if decoded.header.get("kid") != self.kid:
            raise ValueError("the token was signed by an unknown key")
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise ValueError("the token was issued by another server")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now:
            raise ValueError("the token has expired")
        return claims

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def new_jti() -> str:
    return token_urlsafe(16)
