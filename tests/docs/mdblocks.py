"""The shell blocks of the docs and how each is exercised.

Convention: every ```bash block in docs/*.md is preceded by a marker line
`<!-- test: MODE [words] -->`. Modes:
  env          exported variables; prepended to every later block of the same file
  local        run with bash -euo pipefail against the local setup; must exit 0
  local-fails  run the same way; must exit non-zero (a refusal the docs show on purpose)
  serve PATH   a long-running server: started, must answer http://127.0.0.1:$PORT/PATH, stopped
  cluster      kubectl (and scripts) against the Kubernetes API emulator; must exit 0.
               `kubectl apply` runs with --validate=false: the emulator serves no OpenAPI
               document for client-side validation (the CRD's schema still validates)
  helm         with the real helm; `helm install NAME CHART ARGS` lines are rendered as
               `helm template NAME CHART ARGS` (no real cluster exists here, and the
               emulator's reported version is below the chart's kubeVersion)
  skip REASON  not run; allowed only for the blocks named in ALLOWED_SKIPS
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"^<!--\s*test:\s*([a-z-]+)\s*(.*?)\s*-->\s*$")
MODES = {"env", "local", "local-fails", "serve", "cluster", "helm", "skip"}
ALLOWED_SKIPS = {"bash scripts/bootstrap.sh"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    mode: str
    arg: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            code = "\n".join(lines[i + 1:j]) + "\n"
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            match = MARKER.match(lines[k].strip()) if k >= 0 else None
            mode, arg = (match.group(1), match.group(2)) if match else ("", "")
            found.append(Block(path, start + 1, mode, arg, code))
            i = j
        i += 1
    return found


def for_test(mode: str, code: str) -> str:
    """The block as the test runs it (the rewrites the module docstring declares)."""
    if mode == "helm":
        return re.sub(r"\bhelm (install|upgrade --install|upgrade)\b", "helm template", code)
    if mode == "cluster":
        return re.sub(r"\bkubectl apply\b", "kubectl apply --validate=false", code)
    return code
