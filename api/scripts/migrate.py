"""Apply the schema migrations: `python api/scripts/migrate.py [--database-url URL] [--check]`.

Runs as the schema owner (a Kubernetes Job or a human), never as the API: the API's
role cannot change the schema. With --check it applies nothing and exits 1 when
migrations are pending (the operator's phase-0 gate). APP_DB_PASSWORD, when set, lets
the application role log in with that password. The database URL is read from
--database-url or DATABASE_URL and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.settings import check_database_url  # noqa: E402
from app.stores.postgres.schema import (  # noqa: E402
    EXPECTED_SCHEMA_VERSION,
    MigrationError,
    apply_migrations,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--check", action="store_true", help="report pending, apply nothing")
    parser.add_argument("--migrations-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.database_url:
        print("migrate: set --database-url or DATABASE_URL", file=sys.stderr)
        return 2
    try:
        check_database_url(args.database_url)
    except ValueError as e:
        print(f"migrate: the database URL {e}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(apply_migrations(
            args.database_url, args.migrations_dir,
            app_password=os.environ.get("APP_DB_PASSWORD") or None, check_only=args.check,
        ))
    except MigrationError as e:
        print(f"migrate: refused: {e}", file=sys.stderr)
        return 1
    except (OSError, Exception) as e:  # noqa: BLE001 - the driver's text may hold the URL
        print(f"migrate: failed: {type(e).__name__}", file=sys.stderr)
        return 1
    if args.check:
        state = "pending: " + ", ".join(f"{v:03d}" for v in report.pending) if report.pending \
            else "up to date"
        print(f"schema version {report.current} (code expects {EXPECTED_SCHEMA_VERSION}); {state}")
        return 1 if report.pending else 0
    applied = ", ".join(f"{v:03d}" for v in report.applied) or "nothing"
    print(f"applied {applied}; schema version {report.current}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
