"""The migration runner: numbered .sql files in migrations/, applied forward-only.

Each pending file runs in its own transaction together with its row in
schema_migrations (version, name, sha256 checksum, when, by whom), which is the
spec's audit log of schema changes. A session advisory lock keeps two runners (two
pods starting at once, a Job and a human) from racing; a file whose checksum changed
after it was applied is refused, because the database would no longer match the
repository. The API itself never migrates: at start-up it only checks the version.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.errors import StoreUnavailableError

EXPECTED_SCHEMA_VERSION = 15
APP_ROLE = "storemigration_app"
LOCK_KEY = 0x5354_4F52_4D49_47  # "STORMIG"
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   char(64) NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
)"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"
SELECT_VERSION = "SELECT max(version) FROM schema_migrations"
LEDGER_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
LOCK = "SELECT pg_advisory_lock($1)"
UNLOCK = "SELECT pg_advisory_unlock($1)"
# The password travels as a bind parameter and is quoted by the server (format %L):
# no SQL text is ever built from it on the client.
SET_APP_PASSWORD_VAR = "SELECT set_config('storemigration.app_password', $1, true)"
SET_APP_PASSWORD = """
DO $$
BEGIN
    EXECUTE format('ALTER ROLE storemigration_app LOGIN PASSWORD %L',
                   current_setting('storemigration.app_password'));
END;
$$"""


class MigrationError(Exception):
    """The migrations cannot be applied as they stand; the message says why."""


class SchemaVersionError(StoreUnavailableError):
    """The database schema is not the version this code was built for."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations_dir() -> Path:
    override = os.environ.get("MIGRATIONS_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[4] / "migrations"


def discover(directory: Path | None = None) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted((directory or migrations_dir()).glob("*.sql")):
        m = _FILE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


@dataclass
class MigrationReport:
    applied: list[int]
    current: int
    pending: list[int]


async def _plan(conn: asyncpg.Connection, files: list[Migration]) -> list[Migration]:
    applied = {r["version"]: r for r in await conn.fetch(SELECT_APPLIED)}
    by_version = {m.version: m for m in files}
    for version, row in applied.items():
        m = by_version.get(version)
        if m is None:
            raise MigrationError(
                f"the database has migration {version:03d} ({row['name']}) that this code "
                "does not ship: it is newer than this code"
            )
        if m.checksum != row["checksum"].strip():
            raise MigrationError(
                f"migration {m.path.name} changed after it was applied (checksum "
                f"{row['checksum'][:12]}... in the database, {m.checksum[:12]}... on disk); "
                "add a new migration instead of editing an applied one"
            )
    return [m for m in files if m.version not in applied]


async def apply_migrations(
    dsn: str,
    directory: Path | None = None,
    app_password: str | None = None,
    check_only: bool = False,
) -> MigrationReport:
    """Apply pending migrations (or with check_only just report them); with
    app_password also let the application role log in with that password."""
    files = discover(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(LOCK, LOCK_KEY)
        try:
            await conn.execute(CREATE_LEDGER)
            pending = await _plan(conn, files)
            done: list[int] = []
            if not check_only:
                for m in pending:
                    async with conn.transaction():
                        await conn.execute(m.sql)
                        await conn.execute(INSERT_APPLIED, m.version, m.name, m.checksum)
                    done.append(m.version)
                if app_password:
                    async with conn.transaction():
                        await conn.execute(SET_APP_PASSWORD_VAR, app_password)
                        await conn.execute(SET_APP_PASSWORD)
            current = await conn.fetchval(SELECT_VERSION) or 0
            return MigrationReport(
                applied=done, current=current, pending=[] if done else [m.version for m in pending]
            )
        finally:
            await conn.execute(UNLOCK, LOCK_KEY)
    finally:
        await conn.close()


async def check_schema_version(
    conn: asyncpg.Connection, expected: int = EXPECTED_SCHEMA_VERSION
) -> int:
    """The database's schema version, or SchemaVersionError when it is not `expected`."""
    if not await conn.fetchval(LEDGER_EXISTS):
        raise SchemaVersionError(
            f"the database has no schema_migrations table; this code expects schema version "
            f"{expected}: run `python api/scripts/migrate.py` first"
        )
    version = await conn.fetchval(SELECT_VERSION) or 0
    if version != expected:
        action = "run `python api/scripts/migrate.py`" if version < expected else (
            "deploy the code that matches the database"
        )
        raise SchemaVersionError(
            f"database schema version is {version}, this code expects {expected}: {action}"
        )
    return int(version)
