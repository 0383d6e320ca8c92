"""The repository stands on its own: every document the docs, scripts, chart messages and
code cite is a file in it (no page that lives only on a development machine, no
machine-local path), and specs/054-postgresql-migration.md gives every requirement a
test that exists, or says plainly why not."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "054-postgresql-migration.md"
SCOPE_DIRS = ("api", "benchmarks", "charts", "crds", "demo", "devcluster", "docs", "migrations",
              "operator", "scripts", "specs")
SCOPE_FILES = ("README.md", ".env.example", "Dockerfile", "skaffold.yaml", "pyproject.toml")
SUFFIXES = {".md", ".py", ".sh", ".sql", ".yaml", ".yml", ".tpl", ".txt", ".json", ".lua",
            ".toml"}
SKIP = ("benchmarks/results/",)
CITED_MD = re.compile(r"(?<![\w/.-])([\w./-]*[\w-]\.md)\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/home/|/root/|/Users/|[A-Z]:\\\\)")
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)`")
MARKERS = ("**Deviation:**", "**Open:**", "**Checked by:**")


def scope() -> list[Path]:
    files = [ROOT / name for name in SCOPE_FILES if (ROOT / name).exists()]
    for folder in SCOPE_DIRS:
        files += [p for p in (ROOT / folder).rglob("*")
                  if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
                  and not str(p.relative_to(ROOT)).startswith(SKIP)]
    return sorted(files)


def resolves(source: Path, cited: str) -> bool:
    return (source.parent / cited).exists() or (ROOT / cited).exists()


def test_every_cited_file_exists() -> None:
    problems = []
    for path in scope():
        where = path.relative_to(ROOT)
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for cited in CITED_MD.findall(line):
                if not resolves(path, cited):
                    problems.append(f"{where}:{n}: cites {cited}, which is not in the repository")
            if path.suffix == ".md":
                for target in LINK.findall(line):
                    target = target.split("#", 1)[0]
                    if target and "://" not in target and not target.startswith("mailto:") \
                            and not resolves(path, target):
                        problems.append(f"{where}:{n}: links {target}, which does not exist")
            if MACHINE_PATH.search(line):
                problems.append(f"{where}:{n}: a machine-local path: {line.strip()[:120]}")
    assert not problems, "\n".join(problems)


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """`name` and `Class::name` of every test function in a test module."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"):
            found.add(node.name)
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found |= {f"{node.name}::{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                      and item.name.startswith("test_")}
    return frozenset(found)


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def requirement_lines() -> list[tuple[int, str]]:
    """The bullet lines after the first section heading (the legend comes before it),
    but for a group heading whose requirements are the bullets indented under it."""
    lines = SPEC.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("## "))
    bullets = [(i, line) for i, line in enumerate(lines)
               if i > first and line.lstrip().startswith("- ")]
    kept = []
    for (i, line), following in zip(bullets, [*bullets[1:], (-1, "")], strict=True):
        if not (following[0] == i + 1 and indent(following[1]) > indent(line)):
            kept.append((i + 1, line))
    return kept


def test_every_requirement_shows_a_test_or_says_why_not() -> None:
    lines = requirement_lines()
    assert len(lines) > 100, "the spec's requirement list is incomplete"
    bare = [f"line {n}: {line.strip()}" for n, line in lines
            if not TEST_ID.search(line) and not any(m in line for m in MARKERS)]
    assert not bare, "requirements without a test or a reason:\n" + "\n".join(bare)


def test_every_test_id_in_the_spec_exists() -> None:
    cited = TEST_ID.findall(SPEC.read_text())
    assert len(cited) > 100
    missing = [f"{module}::{name}" for module, name in cited
               if not (ROOT / module).exists() or name not in defined_tests(ROOT / module)]
    assert not missing, "the spec names tests that do not exist:\n" + "\n".join(missing)


def test_a_missing_test_id_or_file_would_be_caught(tmp_path: Path) -> None:
    assert "test_ddl_run_directly_by_the_owner_is_recorded" in defined_tests(
        ROOT / "tests/postgres/test_schema_audit.py")
    assert "test_no_such_thing" not in defined_tests(ROOT / "tests/postgres/test_schema_audit.py")
    page = tmp_path / "page.md"
    page.write_text("see DESIGN.md and [the runbook](RUNBOOK.md)\n")
    assert CITED_MD.findall(page.read_text()) == ["DESIGN.md", "RUNBOOK.md"]
    assert not resolves(page, "DESIGN.md") and resolves(ROOT / "docs" / "x.md", "RUNBOOK.md")
    assert MACHINE_PATH.search("in /work/shared/notes/PERFORMANCE-LIMITS.md")
