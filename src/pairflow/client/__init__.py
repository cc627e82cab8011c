"""Device side of pairflow: log a device in by pairing (ezeep) or RFC 8628, and keep its tokens fresh.

This package talks to any compatible server over HTTP and imports nothing from the server side.

Typical use::

    from pairflow.client import Authorized, Credentials, DeviceClient, open_store, remember

    with DeviceClient(server, Credentials(client_id, secret)) as client:
        pending = client.start("printing")
        print("Open", pending.url)
        outcome = client.wait(pending)
    if isinstance(outcome, Authorized):
        remember(open_store(), client.info, client.credentials, outcome.tokens, account=None)

    session = Session(open_store(), server, client_id)
    httpx.get(url, auth=BearerAuth(session))
"""

from pairflow.client.api import (
    DEFAULT_SERVER,
    AsyncDeviceClient,
    DeviceClient,
    unverified_claims,
)
from pairflow.client.outcomes import (
    AnswerLost,
    AnswerLostError,
    Authorized,
    Cancelled,
    Credentials,
    Denied,
    Expired,
    NotSignedIn,
    OAuthError,
    Outcome,
    PairflowError,
    Pending,
    ProtocolError,
    Tokens,
    TransportError,
    TransportFailure,
)
from pairflow.client.protocol import ServerInfo
from pairflow.client.session import BearerAuth, Session, remember
from pairflow.client.storage import (
    Entry,
    FileStore,
    KeyringStore,
    StoreError,
    TokenStore,
    default_home,
    open_store,
)

__all__ = [
    "DEFAULT_SERVER",
    "AnswerLost",
    "AnswerLostError",
    "AsyncDeviceClient",
    "Authorized",
    "BearerAuth",
    "Cancelled",
    "Credentials",
    "Denied",
    "DeviceClient",
    "Entry",
    "Expired",
    "FileStore",
    "KeyringStore",
    "NotSignedIn",
    "OAuthError",
    "Outcome",
    "PairflowError",
    "Pending",
    "ProtocolError",
    "ServerInfo",
    "Session",
    "StoreError",
    "TokenStore",
    "Tokens",
    "TransportError",
    "TransportFailure",
    "default_home",
    "open_store",
    "remember",
    "unverified_claims",
]
