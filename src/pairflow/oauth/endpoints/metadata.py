"""RFC 8414: ``GET /.well-known/oauth-authorization-server``."""

from __future__ import annotations

from typing import Any

from pairflow.oauth.grants import GRANTS
from pairflow.oauth.server import ServerConfig


def document(config: ServerConfig, scopes: list[str]) -> dict[str, Any]:
    issuer = config.issuer
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/access_token",
        "device_authorization_endpoint": f"{issuer}/oauth/device_authorization",
        # ezeep's pairing endpoint; pairflow's own client looks for it to choose the dialect.
        "pairing_endpoint": f"{issuer}/oauth/pair",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "userinfo_endpoint": f"{issuer}/api/me",
        "grant_types_supported": list(GRANTS),
        "response_types_supported": [],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": [],
    }
