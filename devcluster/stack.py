"""PostgreSQL with the project's schema plus the API as a real process on it.

The script tests, the docs tests, the outage drill and the load test all need the same
thing: a fresh server, a migrated database, the least-privilege app role's DSN, and
`python -m app` started against it with some settings. One context manager builds it
and tears all of it down.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devcluster.api_process import LocalApi
from devcluster.postgres import (
    APP_PASSWORD,
    PostgresServer,
    create_migrated_database,
    start_postgres,
    with_database,
)


@dataclass
class Stack:
    base: Path
    server: PostgresServer
    api: LocalApi
    owner_dsn: str
    app_dsn: str

    @property
    def admin_dsn(self) -> str:
        return self.server.dsn


@contextmanager
def api_on_postgres(
    env: dict[str, str], database: str = "storemigration", durable: bool = False
) -> Iterator[Stack]:
    """A migrated `database` on a new server and the API started with `env` on top of
    DATABASE_URL (the app role) and JOURNAL_FSYNC=never; everything removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="sm-stack-"))
    server = start_postgres(durable=durable)
    api: LocalApi | None = None
    try:
        asyncio.run(create_migrated_database(server.dsn, database))
        app_dsn = with_database(server.dsn, database, "storemigration_app", APP_PASSWORD)
        api = LocalApi(
            base / "data",
            base / "api.log",
            env={"DATABASE_URL": app_dsn, "JOURNAL_FSYNC": "never", **env},
        )
        api.start()
        yield Stack(base, server, api, with_database(server.dsn, database), app_dsn)
    finally:
        if api is not None:
            api.stop()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
