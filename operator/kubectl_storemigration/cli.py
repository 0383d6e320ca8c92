"""The commands of `kubectl storemigration` and their exit codes.

  get NAME [--watch]        the view (view.py); --watch refreshes it in place
  pause | resume NAME       spec.paused (resume also clears spec.abort)
  abort NAME                spec.abort: reads to 0% and hold
  retry NAME                a new spec.retryToken: failed Jobs and exhausted rollbacks again
  approve-cleanup NAME      spec.cleanup.approved and targetPhase Cleanup
  promote NAME              a new spec.promoteToken, when every gate evaluation of the
                            current interval passed (else refused, naming the one that did not)
  status NAME --until PHASE --timeout 10m
                            for CI: 0 reached, 1 Degraded or rolled back, 2 timed out

Exit codes everywhere: 0 done, 1 refused or failed, 2 timed out, 3 usage or cluster error.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from storemigration_operator.core.durations import format_duration, parse_duration
from storemigration_operator.core.spec import Phase
from storemigration_operator.core.status import MigrationStatus, read_status

from .client import Cluster, ClusterError
from .view import render, view

EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT, EXIT_ERROR = 0, 1, 2, 3
PHASES = [p.name for p in Phase]
CLEAR = "\x1b[H\x1b[2J"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # 2 means timed out here, so usage is 3
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _duration(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> Parser:
    common = Parser(add_help=False)
    common.add_argument("name", help="the StoreMigration")
    common.add_argument("-n", "--namespace", help="its namespace (default: the context's)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    common.add_argument("--context", help="kubeconfig context")
    common.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p = Parser(prog="kubectl storemigration", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="Every change is a merge patch of the StoreMigration's spec.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    get = sub.add_parser("get", parents=[common], help="show phase, gates, Jobs and history")
    get.add_argument("-w", "--watch", action="store_true", help="refresh until Ctrl-C")
    get.add_argument("--interval", type=_duration, default=2.0, help="refresh period (2s)")
    for name, (_, help_) in CONTROLS.items():
        sub.add_parser(name, parents=[common], help=help_)
    promote = sub.add_parser("promote", parents=[common],
                             help="take the next step now, if every gate evaluation passed")
    promote.add_argument("--timeout", type=_duration, default=60.0,
                         help="how long to wait for the operator's answer (60s)")
    promote.add_argument("--no-wait", action="store_true", help="patch and return")
    status = sub.add_parser("status", parents=[common], help="wait for a phase (for CI)")
    status.add_argument("--until", choices=PHASES, default="Complete", help="(Complete)")
    status.add_argument("--timeout", type=_duration, default=600.0, help="(10m)")
    status.add_argument("--interval", type=_duration, default=2.0, help="poll period (2s)")
    return p


def _token() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _emit(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    print(json.dumps(doc, indent=2) if args.output == "json" else text, flush=True)


# ---- controls: one merge patch each ----
def _pause(_: dict[str, Any]) -> dict[str, Any]:
    return {"paused": True}


def _resume(_: dict[str, Any]) -> dict[str, Any]:
    return {"paused": False, "abort": False}


def _abort(_: dict[str, Any]) -> dict[str, Any]:
    return {"abort": True}


def _retry(_: dict[str, Any]) -> dict[str, Any]:
    return {"retryToken": _token()}


def _approve(_: dict[str, Any]) -> dict[str, Any]:
    return {"cleanup": {"approved": True}, "targetPhase": "Cleanup"}


CONTROLS: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "pause": (_pause, "no forward move (gates still run and roll back)"),
    "resume": (_resume, "undo pause and abort"),
    "abort": (_abort, "reads back to memory (0%%) and hold"),
    "retry": (_retry, "retry failed Jobs and exhausted rollbacks"),
    "approve-cleanup": (_approve, "allow cleanup after primaryHold (cannot be undone)"),
}
SAID = {"pause": "paused: no forward move; gates still run and a failure still rolls back",
        "resume": "resumed",
        "abort": "aborted: reads return to memory (0%) and the migration holds until resume",
        "retry": "retry requested: failed Jobs and exhausted rollbacks are tried again",
        "approve-cleanup": "cleanup approved: it begins once primaryHold has passed and the "
        "gates hold; it cannot be undone"}


def control(args: argparse.Namespace, cluster: Cluster) -> int:
    obj = cluster.get(args.name)
    phase = (obj.get("status") or {}).get("phase")
    if args.command == "abort" and phase in ("Cleanup", "Complete"):
        why = f"{phase}: cleanup has begun and cannot be undone"
        _emit(args, {"name": args.name, "command": "abort", "result": "Refused",
                     "reason": why}, f"refused: {why}")
        return EXIT_FAILED
    patch = CONTROLS[args.command][0](obj)
    cluster.patch_spec(args.name, patch)
    _emit(args, {"name": args.name, "namespace": cluster.namespace, "command": args.command,
                 "patch": {"spec": patch}},
          f"storemigration {cluster.namespace}/{args.name} {SAID[args.command]} "
          f"(spec patched: {json.dumps(patch)})")
    return EXIT_OK


def promote(args: argparse.Namespace, cluster: Cluster) -> int:
    obj = cluster.get(args.name)
    judged = view(obj, _now())["promote"]
    base = {"name": args.name, "namespace": cluster.namespace, "command": "promote"}
    if not judged["allowed"]:
        _emit(args, base | {"result": "Refused", "reason": judged["reason"], "patch": None},
              f"promote refused: {judged['reason']}")
        return EXIT_FAILED
    token = _token()
    cluster.patch_spec(args.name, {"promoteToken": token})
    base |= {"patch": {"spec": {"promoteToken": token}}}
    if args.no_wait:
        _emit(args, base | {"result": "Requested"}, f"promote requested (promoteToken {token})")
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        st = read_status(cluster.get(args.name).get("status"))
        answer = st.promotion
        if answer is not None and answer.token == token:
            _emit(args, base | {"result": answer.result, "reason": answer.reason,
                                "phase": st.phase, "readPercent": st.read_percent},
                  f"promote {answer.result.lower()}: {answer.reason} (now {st.phase}, reads "
                  f"{st.read_percent}%)")
            return EXIT_OK if answer.result == "Accepted" else EXIT_FAILED
        time.sleep(0.5)
    why = f"the operator did not answer within {format_duration_s(args.timeout)} (is it running?)"
    _emit(args, base | {"result": "Timeout", "reason": why}, f"promote: {why}")
    return EXIT_TIMEOUT


def format_duration_s(seconds: float) -> str:
    return format_duration(timedelta(seconds=seconds))


def get(args: argparse.Namespace, cluster: Cluster) -> int:
    tty = sys.stdout.isatty()
    last = None
    while True:
        obj = cluster.get(args.name)
        now = _now()
        if args.output == "json":
            text = json.dumps(view(obj, now), indent=None if args.watch else 2)
        else:
            text = render(obj, now)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if not args.watch:
            print(text, flush=True)
            return EXIT_OK
        if tty and args.output == "text":
            sys.stdout.write(CLEAR + text + "\n")
            sys.stdout.flush()
        elif version != last:
            print(text if args.output == "json" else f"{text}\n---", flush=True)
        last = version
        time.sleep(args.interval)


def _rollback_marks(st: MigrationStatus) -> tuple[int, str]:
    """(rollbacks counted, newest Rollback/Abort entry): either moving means reads went back."""
    times = [h.time.isoformat() for h in st.history if h.type in ("Rollback", "Abort")]
    return st.rollbacks, max(times, default="")


def status(args: argparse.Namespace, cluster: Cluster) -> int:
    goal = PHASES.index(args.until)
    started = time.monotonic()
    marks: tuple[int, str] | None = None
    seen = None
    while True:
        st = read_status(cluster.get(args.name).get("status"))
        degraded = next((c for c in st.conditions if c.type == "Degraded"
                         and c.status == "True"), None)
        now_marks = _rollback_marks(st)
        marks = marks or now_marks
        state = (st.phase, st.read_percent, st.reason)
        if args.output == "text" and state != seen:
            print(f"[{time.monotonic() - started:6.1f}s] {st.phase} {st.read_percent}% "
                  f"{st.reason}: {st.message}", flush=True)
            seen = state
        summary = {"name": args.name, "namespace": cluster.namespace, "until": args.until,
                   "phase": st.phase, "readPercent": st.read_percent, "reason": st.reason,
                   "message": st.message}
        if PHASES.index(st.phase) >= goal:
            _emit(args, summary | {"result": "Reached", "exitCode": EXIT_OK},
                  f"reached {st.phase} (waited for {args.until})")
            return EXIT_OK
        if degraded is not None:
            _emit(args, summary | {"result": "Degraded", "exitCode": EXIT_FAILED,
                                   "degraded": {"reason": degraded.reason,
                                                "message": degraded.message}},
                  f"Degraded ({degraded.reason}): {degraded.message}")
            return EXIT_FAILED
        if now_marks[0] > marks[0] or now_marks[1] > marks[1]:
            last = next(h for h in reversed(st.history) if h.type in ("Rollback", "Abort"))
            _emit(args, summary | {"result": "RolledBack", "exitCode": EXIT_FAILED,
                                   "rollback": last.model_dump(mode="json", by_alias=True,
                                                               exclude_none=True)},
                  f"rolled back: reads {last.from_}% -> {last.to}%: {last.reason}")
            return EXIT_FAILED
        if time.monotonic() - started >= args.timeout:
            why = f"{args.until} not reached within {format_duration_s(args.timeout)}"
            _emit(args, summary | {"result": "Timeout", "exitCode": EXIT_TIMEOUT},
                  f"timed out: {why} (now {st.phase}, reads {st.read_percent}%)")
            return EXIT_TIMEOUT
        time.sleep(args.interval)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cluster = Cluster.connect(args.kubeconfig, args.context, args.namespace)
        if args.command == "get":
            return get(args, cluster)
        if args.command == "promote":
            return promote(args, cluster)
        if args.command == "status":
            return status(args, cluster)
        return control(args, cluster)
    except ClusterError as e:
        if args.output == "json":
            print(json.dumps({"name": args.name, "command": args.command, "error": str(e),
                              "exitCode": EXIT_ERROR}, indent=2))
        else:
            print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
