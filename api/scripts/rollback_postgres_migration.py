#!/usr/bin/env python3
"""Roll the PostgreSQL migration back from a phase, as the spec's Rollback Strategy says:

  phase 1 (dual-write):        DUAL_WRITE_MODE=false, READ_FROM_POSTGRES_PERCENT=0,
                               REHYDRATE_ON_START=false
  phase 2 (read switchover):   READ_FROM_POSTGRES_PERCENT=0
  phase 3 (PostgreSQL primary): IN_MEMORY_WRITES=true, READ_FROM_POSTGRES_PERCENT=0 and
                               REHYDRATE_ON_START=true: the restarted API rebuilds memory
                               from PostgreSQL before it serves a request, so no write made
                               while PostgreSQL was primary can be missed. With --api-url
                               the running API is asked to rehydrate first as well
                               (POST /api/admin/rehydrate; nothing changes unless it
                               succeeds), which proves PostgreSQL is readable. Once the API
                               is back, set REHYDRATE_ON_START=false (or roll back phase 1),
                               or every restart will require PostgreSQL.

Phase 3 rebuilds memory from PostgreSQL, the newest truth, not from the snapshot taken
when phase 3 began, which would lose every write made since (docs/ARCHITECTURE.md, departure 2).
The target is a Kubernetes Deployment (its container's env is patched, which restarts
its pods) or a local KEY=VALUE environment file. Only the names above are changed;
with --store graph|agent_task the per-store names (GRAPH_STORE_..., AGENT_TASK_STORE_...)
are used instead, and with --store all a per-store override already present in the
target is set too, since it would otherwise shadow the global switch.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c

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


# ---------------------------------------------------------------- deployment


def _error(code: int, message: str) -> c.ScriptError:
    return c.ScriptError(code, message)


def _unreachable(e: Exception) -> c.ScriptError:
    return c.ScriptError(c.EXIT_UNREACHABLE, f"Kubernetes unreachable ({type(e).__name__})")


def _apps_api() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except Exception as e:  # noqa: BLE001 - no usable kubeconfig
            raise _error(c.EXIT_USAGE, f"no Kubernetes config ({type(e).__name__})") from None
    return client.AppsV1Api()


def deployment_env(
    api: Any, name: str, namespace: str, container: str | None
) -> tuple[str, set[str]]:
    from kubernetes.client.exceptions import ApiException

    try:
        dep = api.read_namespaced_deployment(name, namespace)
    except ApiException as e:
        code = c.EXIT_USAGE if e.status == 404 else c.EXIT_UNREACHABLE
        raise _error(code, f"cannot read deployment {namespace}/{name}: {e.status}") from None
    except Exception as e:  # noqa: BLE001 - connection errors
        raise _unreachable(e) from None
    containers = dep.spec.template.spec.containers
    chosen = containers[0]
    if container:
        chosen = next((x for x in containers if x.name == container), None)
    if chosen is None:
        raise c.ScriptError(c.EXIT_USAGE, f"no container {container!r} in {namespace}/{name}")
    return chosen.name, {e.name for e in (chosen.env or [])}


def patch_deployment(api: Any, name: str, namespace: str, container: str,
                     changes: dict[str, str]) -> None:
    """A strategic merge patch: containers and env entries merge by name, so only the
    named variables change."""
    from kubernetes.client.exceptions import ApiException

    env = [{"name": k, "value": v} for k, v in changes.items()]
    body = {"spec": {"template": {"spec": {"containers": [{"name": container, "env": env}]}}}}
    try:
        api.patch_namespaced_deployment(name, namespace, body)
    except ApiException as e:
        raise _error(c.EXIT_FAILED, f"patch of {namespace}/{name} refused: {e.status}") from None
    except Exception as e:  # noqa: BLE001 - connection errors
        raise _unreachable(e) from None


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    summary: dict[str, Any] = {
        "script": "rollback_postgres_migration", "from_phase": args.from_phase,
        "store": args.store, "dry_run": args.dry_run,
    }
    try:
        api = None
        if args.env_file:
            path = Path(args.env_file)
            lines = read_env_file(path)
            present = env_names(lines)
            summary["target"] = {"env_file": str(path)}
        else:
            api = _apps_api()
            container, present = deployment_env(api, args.deployment, args.namespace,
                                                args.container)
            summary["target"] = {"deployment": args.deployment, "namespace": args.namespace,
                                 "container": container}
        changes = planned_env(args.from_phase, args.store, present)
        steps = []
        if args.from_phase == 3 and args.api_url:
            steps.append(f"POST {args.api_url.rstrip('/')}/api/admin/rehydrate")
        steps.append("set " + " ".join(f"{k}={v}" for k, v in changes.items()))
        summary |= {"plan": steps, "env": changes}
        if args.dry_run:
            for step in steps:
                sys.stderr.write(f"would: {step}\n")
            summary["ok"] = True
            return c.finish(summary, c.EXIT_OK, args.termination_log)
        progress = c.Progress("rollback", not args.quiet)
        progress(0, len(steps))
        if args.from_phase == 3 and args.api_url:
            summary["rehydrate"] = c.call_admin(args.api_url, "POST", "/api/admin/rehydrate")
            progress(1, len(steps))
        if args.env_file:
            apply_env_file(path, lines, changes)
        else:
            patch_deployment(api, args.deployment, args.namespace, container, changes)
        progress(len(steps), len(steps))
        summary["ok"] = True
        return c.finish(summary, c.EXIT_OK, args.termination_log)
    except c.ScriptError as e:
        summary |= {"ok": False, "error": e.message}
        sys.stderr.write(f"rollback failed, nothing after the failed step was changed: "
                         f"{e.message}\n")
        return c.finish(summary, e.code, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
