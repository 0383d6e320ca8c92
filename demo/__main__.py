"""`python -m demo`: the whole PostgreSQL migration on this machine, with no cluster.

Exit code 0 only when the run reached its goal (Complete; with --faults, reads back at 0%
with the reason recorded) and every acknowledged write was read back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from demo.report import Printer, print_summary, summarize
from demo.run import Options, Outcome, run_demo


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faults", action="store_true",
                   help="revoke the API's PostgreSQL privileges once reads are at >= 20%% and "
                        "show the automatic rollback to 0%%")
    p.add_argument("--fast", action="store_true", help="shorter schedule (tests): steps of 30%%")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    p.add_argument("--limit", type=float, default=None,
                   help="give up after this many seconds (default 420, 240 with --faults)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    return p


async def _main(args: argparse.Namespace, workdir: Path, printer: Printer) -> Outcome:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    opts = Options(faults=args.faults, fast=args.fast, rate=args.rate,
                   limit=args.limit or (240.0 if args.faults else 420.0))
    return await run_demo(opts, workdir, printer.event, printer.progress)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="storemigration-demo-"))
    printer = Printer()
    mode = "with PostgreSQL faults" if args.faults else "healthy"
    printer.out(f"StoreMigration demo ({mode}{', fast' if args.fast else ''}): PostgreSQL, the "
                f"API, Prometheus, the Kubernetes API emulator and the real operator, all "
                f"local. Work dir: {workdir}")
    outcome: Outcome | None = None
    failure = None
    try:
        outcome = asyncio.run(_main(args, workdir, printer))
    except (KeyboardInterrupt, asyncio.CancelledError):
        failure = "interrupted"
    except Exception as e:  # noqa: BLE001 - reported, then the exit code says it failed
        failure = f"{type(e).__name__}: {e}"
    keep = args.keep or outcome is None or not outcome.reached
    logs = workdir / "logs"
    if not keep:
        saved = Path(tempfile.mkdtemp(prefix="storemigration-demo-logs-"))
        for sub in ("logs", "jobs"):
            if (workdir / sub).exists():
                shutil.copytree(workdir / sub, saved / sub)
        shutil.rmtree(workdir, ignore_errors=True)
        logs = saved / "logs"
    if outcome is None:
        printer.out(f"demo failed: {failure}; everything was stopped; logs in {logs}")
        return 1
    summary = summarize(outcome, f"{logs} (api.log, operator.log; Job logs in {logs.parent}/jobs)")
    print_summary(printer, summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    ok = outcome.reached and summary["lost"] == 0 and summary["acknowledged_writes_checked"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
