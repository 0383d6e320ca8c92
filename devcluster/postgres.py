"""A real PostgreSQL 15 started in a temp dir: for tests, the demo and the benchmarks.

pytest-postgresql cannot run as root here, and every test must hit a real server (see
docs/ARCHITECTURE.md, "Real parts in tests"): `start_postgres` runs initdb + pg_ctl on a
free port of 127.0.0.1 (through `runuser -u postgres` when root).
`create_migrated_database` applies the project's migrations, so callers get the real
schema and the least-privilege app role.
A server can be halted and started again on its port, paused with SIGSTOP (a stall, not
an outage), and started with TLS on (a CA and a server certificate made with openssl).
"""

from __future__ import annotations

import os
import shutil
import signal
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


@dataclass(frozen=True)
class TlsFiles:
    """A certificate authority and a server certificate signed by it, made by openssl in
    the server's directory: `ca` is what a client passes as sslrootcert."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
                   ) -> TlsFiles:
    """A throwaway CA and a server certificate for `hosts` (IP or DNS subjectAltNames),
    generated with the openssl command line; the private keys never leave `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in
                                  ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    sans = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    for cmd in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=storemigration test CA", "-keyout", str(ca_key), "-out", str(ca)],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={hosts[0]}",
         "-keyout", str(key), "-out", str(csr)],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)],
    ):
        subprocess.run(cmd, check=True, capture_output=True)
    key.chmod(0o600)
    if os.geteuid() == 0:
        for path in (cert, key):
            shutil.chown(path, "postgres", "postgres")
    return TlsFiles(ca=ca, cert=cert, key=key)


@dataclass
class PostgresServer:
    """A running server: `dsn` is a superuser DSN to its `postgres` database. `tls`
    holds its certificate files when it was started with ssl=on."""

    dsn: str
    datadir: Path | None = None
    owns_dir: bool = False
    options: str = ""
    tls: TlsFiles | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        port = urlsplit(self.dsn).port
        assert port is not None
        return port

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        assert self.datadir is not None
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), *args]),
                       check=check, capture_output=True)

    def halt(self) -> None:
        """Stop the server (fast shutdown) but keep its data: `start` brings it back."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start the (halted) server again on the same port with the same options."""
        assert self.datadir is not None
        self._pg_ctl("-o", self.options, "-l", str(self.datadir.parent / "server.log"),
                     "-w", "-t", "30", "start")

    def processes(self) -> list[int]:
        """The postmaster's pid and its children's (every backend and helper)."""
        assert self.datadir is not None
        master = int((self.datadir / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.append(int(stat.parent.name))
        return [master, *children]

    def pause(self) -> list[int]:
        """SIGSTOP the whole server: connections stay open and every query hangs, as on
        a stalled disk or a frozen VM. Returns the pids, for `resume`."""
        pids = self.processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def resume(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self._stopped or self.datadir is None:
            return
        self._stopped = True
        self._pg_ctl("-m", "immediate", "-w", "stop", check=False)
        if self.owns_dir:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)


PG_HBA = """local all all trust
host all storemigration_app 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


def start_postgres(tmpdir: str | Path | None = None, durable: bool = False,
                   tls: bool = False, tls_hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                   ) -> PostgresServer:
    """initdb + start a server on 127.0.0.1:<free port>. durable=False turns fsync off
    (tests); the benchmarks pass durable=True to measure the default settings. tls=True
    starts it with ssl=on and a CA plus a server certificate for `tls_hosts` generated
    here (`server.tls.ca` is the client's sslrootcert); plain connections still work."""
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
    files = make_tls_files(base / "tls", tls_hosts) if tls else None
    if files is not None:
        opts += f" -c ssl=on -c ssl_cert_file={files.cert} -c ssl_key_file={files.key}"
    server = PostgresServer(dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres",
                            datadir=datadir, owns_dir=owns, options=opts, tls=files)
    server.start()
    return server


async def create_migrated_database(admin_dsn: str, name: str,
                                   app_password: str = APP_PASSWORD) -> None:
    """CREATE DATABASE `name` and apply every migration to it (as the admin)."""
    from app.stores.postgres.schema import apply_migrations

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


