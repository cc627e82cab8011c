"""The OAuth 2.0 protocol, framework-free.

Modules are split by specification: ``endpoints/`` has one module per endpoint and
``grants/`` one per grant type. Nothing here imports Starlette or SQL: endpoints take an
``OAuthRequest`` and a ``Store`` and return a response body or raise ``OAuthError``.
"""
