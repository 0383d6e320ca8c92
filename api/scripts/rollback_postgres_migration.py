#!/usr/bin/env python3
"""Roll the PostgreSQL migration back from a phase, as the spec's Rollback Strategy says:

  phase 1 (dual-write):        DUAL_WRITE_MODE=false, READ_FROM_POSTGRES_PERCENT=0,
                               REHYDRATE_ON_START=false
  phase 2 (read switchover):   READ_FROM_POSTGRES_PERCENT=0
  phase 3 (PostgreSQL primary): IN_MEMORY_WRITES=true, READ_FROM_POSTGRES_PERCENT=0 and
                               REHYDRATE_ON_START=true

A Deployment whose switches come from a ConfigMap (env valueFrom.configMapKeyRef: the
chart's shape, or one the operator adopted) is rolled back live, on the operator's path
(_live_rollback.py): the ConfigMap is written (a pod that restarts boots with the rollback),
then PUT /api/admin/switches goes to every ready pod and each is read back; a pod that does
not confirm is named and the script exits 1. Nothing restarts. From phase 3 the PUT itself
rebuilds memory from PostgreSQL (the existing rehydrate, newer wins, project ids moved
past PostgreSQL's) while PostgreSQL stays trusted, then memory is trusted again; the
Deployment must be at one replica. REHYDRATE_ON_START=true in the ConfigMap makes a pod
that restarts meanwhile rebuild memory before it serves.

A Deployment with literal flags (never adopted) or a local KEY=VALUE env file is changed
as before: the env is patched, which restarts the pod, and the restarted API rebuilds
memory at start-up from phase 3 (REHYDRATE_ON_START). With --api-url the running API is
asked to rehydrate first (POST /api/admin/rehydrate; nothing changes unless it succeeds),
which proves PostgreSQL is readable. Once the API is back, set REHYDRATE_ON_START=false
(or roll back phase 1), or every restart will require PostgreSQL.

Phase 3 rebuilds memory from PostgreSQL, the newest truth, not from the snapshot taken
when phase 3 began, which would lose every write made since (docs/ARCHITECTURE.md, departure 2).
Only the names above are changed; with --store graph|agent_task the per-store names
(GRAPH_STORE_..., AGENT_TASK_STORE_...) are used instead, and with --store all a per-store
override already present in the target is set too, since it would otherwise shadow the
global switch. Pause or stop the operator first: it would apply its own phase again.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import _live_rollback as live

PHASE_ENV: dict[int, dict[str, str]] = {
    1: {"DUAL_WRITE_MODE": "false", "READ_FROM_POSTGRES_PERCENT": "0",
        "REHYDRATE_ON_START": "false"},
    2: {"READ_FROM_POSTGRES_PERCENT": "0"},
    3: {"IN_MEMORY_WRITES": "true", "READ_FROM_POSTGRES_PERCENT": "0",
        "REHYDRATE_ON_START": "true"},
}
GLOBAL_ONLY = {"REHYDRATE_ON_START"}
STORE_PREFIX = {"graph": "GRAPH_STORE_", "agent_task": "AGENT_TASK_STORE_"}


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    p.add_argument("--from-phase", type=int, choices=(1, 2, 3), required=True)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--deployment", help="Kubernetes Deployment to patch")
    target.add_argument("--env-file", help="local KEY=VALUE file to rewrite")
    p.add_argument("--namespace", default="default")
    p.add_argument("--container", help="container in the Deployment (default: the first)")
    p.add_argument("--store", choices=("all", "graph", "agent_task"), default="all")
    p.add_argument("--api-url", help="phase 3: the API that rebuilds memory (ADMIN_TOKEN env)")
    p.add_argument("--timeout", type=float, default=130.0,
                   help="seconds one pod may take to apply and confirm (a phase 3 rollback "
                   "rebuilds memory from PostgreSQL inside the PUT)")
    p.add_argument("--operator-stopped", action="store_true",
                   help="the switches' ConfigMap belongs to a StoreMigration whose operator "
                   "has been stopped (otherwise it would apply its own phase again)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    return p


def planned_env(phase: int, store: str, present: set[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for name, value in PHASE_ENV[phase].items():
        if name in GLOBAL_ONLY:
            changes[name] = value
        elif store == "all":
            changes[name] = value
            for prefix in STORE_PREFIX.values():
                if prefix + name in present:
                    changes[prefix + name] = value
        else:
            changes[STORE_PREFIX[store] + name] = value
    return changes


# ---------------------------------------------------------------- env file


def read_env_file(path: Path) -> list[str]:
    if not path.exists():
        raise c.ScriptError(c.EXIT_USAGE, f"env file not found: {path}")
    return path.read_text().splitlines()


def env_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#") and "=" in text:
            names.add(text.split("=", 1)[0].removeprefix("export ").strip())
    return names


def apply_env_file(path: Path, lines: list[str], changes: dict[str, str]) -> None:
    """Rewrite only the named keys (others, comments and order kept); append missing
    ones; replace the file atomically."""
    left = dict(changes)
    out: list[str] = []
    for line in lines:
        text = line.strip()
        name = text.split("=", 1)[0].removeprefix("export ").strip() if "=" in text else ""
        if text and not text.startswith("#") and name in left:
            prefix = "export " if text.startswith("export ") else ""
            out.append(f"{prefix}{name}={left.pop(name)}")
        else:
            out.append(line)
    out.extend(f"{name}={value}" for name, value in left.items())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(out) + "\n")
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    summary: dict[str, Any] = {
        "script": "rollback_postgres_migration", "from_phase": args.from_phase,
        "store": args.store, "dry_run": args.dry_run,
    }
    started = time.monotonic()
    try:
        target, config_map = None, None
        if args.env_file:
            path = Path(args.env_file)
            lines = read_env_file(path)
            present = env_names(lines)
            summary["target"] = {"env_file": str(path)}
        else:
            target = live.read_target(args.deployment, args.namespace, args.container)
            present = target.present
            summary["target"] = {"deployment": args.deployment, "namespace": args.namespace,
                                 "container": target.container}
        changes = planned_env(args.from_phase, args.store, present)
        steps = []
        if target is not None:
            config_map = target.config_map(list(changes))
            if args.from_phase == 3 and target.replicas > 1:
                raise c.ScriptError(c.EXIT_USAGE, f"{args.namespace}/{args.deployment} runs "
                                    f"{target.replicas} replicas: scale it to 1 before memory "
                                    "is trusted again (each replica would hold its own)")
        if args.from_phase == 3 and args.api_url and config_map is None:
            steps.append(f"POST {args.api_url.rstrip('/')}/api/admin/rehydrate")
        owner = live.owning_migration(target, config_map) if target and config_map else None
        if owner and not args.operator_stopped and not args.dry_run:
            raise c.ScriptError(c.EXIT_USAGE, f"configmap {config_map} belongs to "
                                f"StoreMigration {owner}: stop its operator first (scale the "
                                "operator's Deployment to 0; spec.paused is not enough, a "
                                "paused operator still applies its phase to every pod), "
                                "then pass --operator-stopped")
        summary["owner"] = owner
        sets = " ".join(f"{k}={v}" for k, v in changes.items())
        if config_map is not None:
            want = live.desired(args.from_phase, args.store, config_map, changes)
            switches = json.dumps({k: v for k, v in want.body.items()
                                   if k != "desired_revision"}, sort_keys=True)
            steps += [f"write configmap {config_map}: {sets}",
                      f"PUT /api/admin/switches {switches} to every ready pod of "
                      f"{args.deployment}, then read each back and confirm"]
        else:
            steps.append(f"set {sets}" + (" (literal env: the pods restart)" if target else ""))
        summary |= {"plan": steps, "env": changes, "live": config_map is not None}
        if args.dry_run:
            for step in steps:
                sys.stderr.write(f"would: {step}\n")
            summary["ok"] = True
            return c.finish(summary, c.EXIT_OK, args.termination_log)
        progress = c.Progress("rollback", not args.quiet)
        progress(0, len(steps))
        if args.from_phase == 3 and args.api_url and config_map is None:
            summary["rehydrate"] = c.call_admin(args.api_url, "POST", "/api/admin/rehydrate")
            progress(1, len(steps))
        if args.env_file:
            apply_env_file(path, lines, changes)
        elif config_map is None:
            assert target is not None
            live.patch_literal_env(target, changes)
        else:
            assert target is not None
            token = live.admin_token(target)
            summary["configmap"] = {"name": config_map,
                                    "data": live.write_config_map(target, config_map, changes)}
            progress(len(steps) - 1, len(steps))
            summary["pods"] = live.apply_live(target, want, token, args.timeout)
        progress(len(steps), len(steps))
        summary |= {"ok": True, "seconds": round(time.monotonic() - started, 3)}
        return c.finish(summary, c.EXIT_OK, args.termination_log)
    except c.ScriptError as e:
        summary |= {"ok": False, "error": e.message,
                    "seconds": round(time.monotonic() - started, 3)}
        sys.stderr.write(f"rollback failed, nothing after the failed step was changed: "
                         f"{e.message}\n")
        return c.finish(summary, e.code, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
