"""`python -m demo`: the whole PostgreSQL migration on this machine, with no cluster.

As it starts it prints the commands that watch the run from a second terminal. With --keep
the local cluster (Kubernetes API emulator, API, PostgreSQL, Prometheus, operator) stays up
after the summary until Ctrl-C, with the commands to look around.

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
from typing import Any

from demo.report import Printer, print_summary, summarize
from demo.run import Options, Outcome, look_around, run_demo
from devcluster.cluster import LocalCluster


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faults", action="store_true",
                   help="revoke the API's PostgreSQL privileges once reads are at >= 20%% and "
                        "show the automatic rollback to 0%%")
    p.add_argument("--fast", action="store_true", help="shorter schedule (tests): steps of 30%%")
    p.add_argument("--keep", action="store_true",
                   help="after the summary, keep the local cluster up (and its directory) "
                        "until Ctrl-C")
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    p.add_argument("--limit", type=float, default=None,
                   help="give up after this many seconds (default 420, 240 with --faults)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    return p


def ok(outcome: Outcome, summary: dict[str, Any]) -> bool:
    return outcome.reached and summary["lost"] == 0 and summary["acknowledged_writes_checked"] > 0


class Finish:
    """What happens while the cluster is still up: the summary, and with --keep the wait."""

    def __init__(self, args: argparse.Namespace, workdir: Path, printer: Printer) -> None:
        self.args, self.workdir, self.printer = args, workdir, printer
        self.summary: dict[str, Any] | None = None
        self.saved: Path | None = None  # where the logs go when the work dir is removed

    def keeps_workdir(self, outcome: Outcome | None) -> bool:
        return self.args.keep or outcome is None or not outcome.reached

    async def __call__(self, outcome: Outcome, lc: LocalCluster) -> None:
        logs = self.workdir / "logs"
        if not self.keeps_workdir(outcome):
            self.saved = Path(tempfile.mkdtemp(prefix="storemigration-demo-logs-"))
            logs = self.saved / "logs"
        self.summary = summarize(outcome, f"{logs} (api.log, operator.log; Job logs in "
                                          f"{logs.parent}/jobs)")
        print_summary(self.printer, self.summary)
        if self.args.json:
            self.args.json.write_text(json.dumps(self.summary, indent=2, default=str))
        if self.args.keep:
            await self.hold(lc)

    async def hold(self, lc: LocalCluster) -> None:
        out = self.printer.out
        out("--keep: the local cluster stays up until Ctrl-C. From another terminal:")
        for line in look_around(lc):
            out(f"    {line}")
        out("Press Ctrl-C to stop it.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        out("stopping the local cluster ...")


async def _main(args: argparse.Namespace, workdir: Path, printer: Printer,
                finish: Finish) -> Outcome:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    opts = Options(faults=args.faults, fast=args.fast, rate=args.rate,
                   limit=args.limit or (240.0 if args.faults else 420.0))
    return await run_demo(opts, workdir, printer.event, printer.progress, printer.out,
                          finish)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="storemigration-demo-"))
    printer = Printer()
    mode = "with PostgreSQL faults" if args.faults else "healthy"
    printer.out(f"StoreMigration demo ({mode}{', fast' if args.fast else ''}): PostgreSQL, the "
                f"API, Prometheus, the Kubernetes API emulator and the real operator, all "
                f"local. Work dir: {workdir}")
    finish = Finish(args, workdir, printer)
    outcome: Outcome | None = None
    failure = None
    try:
        outcome = asyncio.run(_main(args, workdir, printer, finish))
    except (KeyboardInterrupt, asyncio.CancelledError):
        failure = "interrupted"
    except Exception as e:  # noqa: BLE001 - reported, then the exit code says it failed
        failure = f"{type(e).__name__}: {e}"
    if outcome is not None and finish.summary is None:
        failure = "interrupted before the summary"
        outcome = None
    if not finish.keeps_workdir(outcome):
        saved = finish.saved or Path(tempfile.mkdtemp(prefix="storemigration-demo-logs-"))
        for sub in ("logs", "jobs"):
            if (workdir / sub).exists():
                shutil.copytree(workdir / sub, saved / sub)
        shutil.rmtree(workdir, ignore_errors=True)
    if outcome is None or finish.summary is None:
        printer.out(f"demo failed: {failure}; everything was stopped; logs in "
                    f"{workdir / 'logs'}")
        return 1
    if args.keep:
        printer.out(f"stopped; the work dir is kept: {workdir}")
    return 0 if ok(outcome, finish.summary) else 1


if __name__ == "__main__":
    sys.exit(main())
