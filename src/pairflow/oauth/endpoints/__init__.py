"""One module per endpoint: pair, device_authorization, token, revocation, introspection, metadata."""
