"""A real PostgreSQL 15 started in a temp dir: for tests, the demo and the benchmarks.

pytest-postgresql cannot run as root here, and every test must hit a real server (see
TEST-HARNESS.md): `start_postgres` runs initdb + pg_ctl on a free port of 127.0.0.1
(through `runuser -u postgres` when root). `create_migrated_database` applies the
project's migrations, so callers get the real schema and the least-privilege app role.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
APP_PASSWORD = "app-test-secret-pw"
TEMPLATE_DB = "sm_template"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def with_database(dsn: str, database: str, user: str | None = None, password: str | None = None
                  ) -> str:
    """`dsn` pointed at another database (and optionally another user)."""
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if user is None and "@" in parts.netloc:
        netloc = parts.netloc
    elif user is not None:
        netloc = f"{user}:{password}@{netloc}" if password else f"{user}@{netloc}"
    return urlunsplit((parts.scheme, netloc, "/" + database, parts.query, ""))


@dataclass
class PostgresServer:
    """A running server: `dsn` is a superuser DSN to its `postgres` database."""

    dsn: str
    datadir: Path | None = None
    owns_dir: bool = False
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped or self.datadir is None:
            return
        self._stopped = True
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                          "-w", "stop"]),
            check=False, capture_output=True,
        )
        if self.owns_dir:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)


PG_HBA = """local all all trust
host all storemigration_app 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


def start_postgres(tmpdir: str | Path | None = None, durable: bool = False) -> PostgresServer:
    """initdb + start a server on 127.0.0.1:<free port>. durable=False turns fsync off
    (tests); the benchmarks pass durable=True to measure the default settings."""
    owns = tmpdir is None
    base = Path(tempfile.mkdtemp(prefix="sm-pg-")) if tmpdir is None else Path(tmpdir)
    base.mkdir(parents=True, exist_ok=True)
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sockdir, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]),
        check=True, capture_output=True,
    )
    # The application role logs in with its password, as in production (so a wrong
    # password is refused for real); the owner and the superuser stay on trust.
    (datadir / "pg_hba.conf").write_text(PG_HBA)
    port = _free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockdir}"
            " -c max_connections=200")
    if not durable:
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l",
                      str(base / "server.log"), "-w", "-t", "30", "start"]),
        check=True, capture_output=True,
    )
    return PostgresServer(dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres",
                          datadir=datadir, owns_dir=owns)


async def create_migrated_database(admin_dsn: str, name: str,
                                   app_password: str = APP_PASSWORD) -> None:
    """CREATE DATABASE `name` and apply every migration to it (as the admin)."""
    from app.db.migrate import apply_migrations

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await apply_migrations(with_database(admin_dsn, name), app_password=app_password)


async def clone_database(admin_dsn: str, template: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


