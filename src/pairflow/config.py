"""Server settings, from command-line options and PAIRFLOW_* environment variables.

The CLI maps each option to its variable; worker processes read the variables back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".pairflow")
    database_url: str | None = None
    redis_url: str | None = None
    issuer: str = "http://127.0.0.1:8000"
    access_token_ttl: int = 3600
    code_ttl: int = 600
    poll_interval: int = 5
    refresh_token_ttl: int = 90 * 24 * 3600
    max_wait: int = 30

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from PAIRFLOW_* variables: how each server worker process learns its configuration."""
        env = os.environ
        return cls(
            data_dir=Path(env.get("PAIRFLOW_DATA_DIR") or ".pairflow"),
            database_url=env.get("PAIRFLOW_DATABASE_URL") or None,
            redis_url=env.get("PAIRFLOW_REDIS_URL") or None,
            access_token_ttl=int(env.get("PAIRFLOW_ACCESS_TOKEN_TTL") or cls.access_token_ttl),
            code_ttl=int(env.get("PAIRFLOW_CODE_TTL") or cls.code_ttl),
            poll_interval=int(env.get("PAIRFLOW_POLL_INTERVAL") or cls.poll_interval),
            issuer=env.get("PAIRFLOW_ISSUER") or cls.issuer,
        )

    @property
    def resolved_database_url(self) -> str:
        """The database URL; the default is a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pairflow.db').resolve()}"

    @property
    def issuer_url(self) -> str:
        return self.issuer.rstrip("/")
