"""`python -m app`: the API under uvicorn (uvloop, httptools, one worker, no access log).

Settings are validated before uvicorn starts, so a bad environment variable stops the
process with a message naming it and a non-zero exit: this entry point is the one place
that turns a ConfigurationError into an exit. HOST and PORT come from the
environment (default 0.0.0.0:8000, what a container needs) or --host/--port.

Which app it serves follows the settings: those that retire the migration
(STORE_BACKEND=postgres, no migration setting, no journal left in DATA_DIR:
app.postgres_service.serves_postgres_only) get the PostgreSQL-only service, so such a
process never loads the migration router or the memory store; any other settings get
app.main, which `build_app` imports only then. That is the one import in api/app inside a
function (tests/layout/test_api_layout.py names it): at module level it would load the
migration into every process.
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn
from fastapi import FastAPI

from app import gc_policy
from app.postgres_service import create_postgres_app, serves_postgres_only
from app.settings import ConfigurationError, Settings, load_settings


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"PORT must be an integer, got {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"PORT must be 1-65535, got {port}")
    return port


def build_app(settings: Settings) -> FastAPI:
    """The app `python -m app` serves for `settings`."""
    if serves_postgres_only(settings):
        return create_postgres_app(settings)
    from app.main import create_app

    return create_app(settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument("--port", type=_port, default=os.environ.get("PORT", "8000"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as e:
        raise SystemExit(str(e)) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    gc_policy.install(settings.gc_freeze_after_ms)
    uvicorn.run(
        build_app(settings),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        workers=1,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
