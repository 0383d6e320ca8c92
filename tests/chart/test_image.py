"""The Dockerfile and skaffold.yaml, checked by reading them.

No container engine or skaffold binary can run here, so the image is not built: these
tests hold the Dockerfile to what the chart relies on (the files it copies exist, both
commands' packages are on PYTHONPATH, a non-root user, pinned dependencies) and keep
skaffold.yaml pointing at real paths with image names its templates can resolve.
"""

from __future__ import annotations

import re
import shlex

import yaml

from tests.chart.render import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_python_311_slim() -> None:
    ins = instructions()
    args = {rest.split("=", 1)[0]: rest.split("=", 1)[1] for w, rest in ins if w == "ARG"}
    froms = [rest for w, rest in ins if w == "FROM"]
    assert len(froms) >= 2
    bases = {args.get(f.split()[0].strip("${}"), f.split()[0]) for f in froms}
    assert bases == {"python:3.11-slim-bookworm"}


def test_dockerfile_copies_only_files_that_exist() -> None:
    copies = [shlex.split(rest) for w, rest in instructions() if w == "COPY"]
    sources = [p for c in copies if not any(a.startswith("--from") for a in c)
               for p in c[:-1] if not p.startswith("--")]
    assert "api/requirements.txt" in sources
    for src in sources:
        assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    ignore = (ROOT / ".dockerignore").read_text().split()
    for top in {s.split("/")[0] for s in sources}:
        assert f"!{top}/" in ignore, f".dockerignore keeps {top}/ out of the build context"


def test_dockerfile_runs_both_commands_as_non_root() -> None:
    ins = instructions()
    user = [rest for w, rest in ins if w == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "USER must be a numeric non-root uid"
    assert int(uid) == yaml.safe_load((CHART / "values.yaml").read_text())[
        "podSecurityContext"]["runAsUser"]
    env = " ".join(rest for w, rest in ins if w == "ENV")
    assert "PYTHONPATH=/app/api:/app/operator" in env
    assert [rest for w, rest in ins if w == "CMD"][-1] == '["python", "-m", "app"]'
    assert (ROOT / "api" / "app" / "__main__.py").exists(), "python -m app needs __main__.py"
    assert (ROOT / "operator" / "storemigration_operator" / "__main__.py").exists(), \
        "python -m storemigration_operator needs operator/storemigration_operator/__main__.py"


def test_runtime_dependencies_are_pinned() -> None:
    lines = [ln.strip() for ln in (ROOT / "api" / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    assert reqs
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", r) for r in reqs), reqs


def test_skaffold_builds_the_image_and_deploys_the_chart() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert config["apiVersion"] == "skaffold/v4beta11"
    assert config["kind"] == "Config"
    for section in [config, *config.get("profiles", [])]:
        artifacts = section["build"]["artifacts"]
        images = {a["image"] for a in artifacts}
        for artifact in artifacts:
            assert (ROOT / artifact.get("context", ".") / artifact["docker"]["dockerfile"]).exists()
        for release in section["deploy"]["helm"]["releases"]:
            assert (ROOT / release["chartPath"]).resolve() == CHART
            for values in release.get("valuesFiles", []):
                assert (ROOT / values).exists()
            templates = " ".join(release["setValueTemplates"].values())
            for name in re.findall(r"IMAGE_(?:REPO|TAG|DIGEST)_(\w+)", templates):
                assert name in {re.sub(r"[^A-Za-z0-9]", "_", i) for i in images}
            assert set(release["setValueTemplates"]) >= {"image.repository", "image.tag"}


def test_every_value_is_commented() -> None:
    """Each key in values.yaml has a comment line right above it, unless its parent's
    `# --` comment documents the whole value (resources, probes, security contexts)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, parent documents its children)
    missing = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        above = lines[i - 1].strip() if i else ""
        commented = above.startswith("#")
        covered = any(doc for _, doc in stack)
        if not commented and not covered:
            missing.append(f"line {i + 1}: {match.group(2)}")
        stack.append((indent, above.startswith("# --") or covered))
    assert missing == [], missing


def test_sync_script_reports_in_sync() -> None:
    import scripts.sync_crd as sync

    assert sync.main(["--check"]) == 0
