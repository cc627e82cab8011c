"""Security-relevant events, kept in the store and mirrored to the ``pairflow.audit`` logger.

Details name people, clients and addresses, never codes, tokens, secrets or passwords.
"""

from __future__ import annotations

import logging
import time

from pairflow.store import AuditEvent, Store

log = logging.getLogger("pairflow.audit")


async def record(
    store: Store,
    event: str,
    *,
    detail: str = "",
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
) -> None:
    entry = AuditEvent(at=time.time(), event=event, detail=detail, user_id=user_id, client_id=client_id, ip=ip)
    log.info("%s user=%s client=%s ip=%s %s", event, user_id or "-", client_id or "-", ip or "-", detail)
    await store.record(entry)
