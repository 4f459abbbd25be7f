#!/usr/bin/env bash
# Idempotent installer for a fresh Debian 12 machine. Run from the repository root:
#   deploy/install.sh
# Installs Java 17, Maven and PostgreSQL (Debian packages) when missing (and records which in
# $NUDGE_CACHE_DIR/installed-packages.txt for `nudge stack down --purge`), creates .venv
# (Python 3.11), installs requirements.lock and Nudge itself (editable), and fetches Kafka's
# jars and a pinned kubeconform (built with `go install`) into the cache. Fast when everything is
# already there.
set -euo pipefail

cd "$(dirname "$0")/.."
[ -f pyproject.toml ] && [ -f requirements.lock ] || { echo "run me from the Nudge repository" >&2; exit 1; }

say() { printf 'install: %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "install: need root (or sudo) for: $*" >&2; exit 1
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# --- system packages -------------------------------------------------------------------------
missing=()
java_ok=false
if command -v java >/dev/null; then
    # "17.0.15" -> 17; Kafka 4.x needs 17 or newer.
    major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
    [ "${major:-0}" -ge 17 ] 2>/dev/null && java_ok=true
fi
$java_ok || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v python3.11 >/dev/null || missing+=(python3.11 python3.11-venv)
# The client tests drive the official Node clients (package.json).
command -v npm >/dev/null || missing+=(nodejs npm)
if command -v python3.11 >/dev/null && ! python3.11 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3.11-venv)
fi
# The console's browser tests and analytics.js's drive Debian's Chromium through Playwright (pinned in
# requirements.lock); Playwright's own browser download is never used.
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # Recorded, so `nudge stack down --purge` removes exactly what this script installed.
    record="${NUDGE_CACHE_DIR:-$HOME/.cache/nudge}/installed-packages.txt"
    mkdir -p "$(dirname "$record")"
    printf '%s\n' "${missing[@]}" >> "$record"
else
    say "system packages present (java 17+, maven, postgresql, python3.11, node, chromium)"
fi

# --- Python environment ----------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $(command -v python3.11)"
    python3.11 -m venv .venv
fi

want=$(grep -v '^#' requirements.lock | grep -v '^$' | tr 'A-Z_' 'a-z-' | sort)
have=$(.venv/bin/pip freeze --exclude-editable 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)
if [ "$want" != "$have" ]; then
    say "pip install -r requirements.lock"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
else
    say "requirements.lock already installed"
fi

if [ ! -x .venv/bin/nudge ] || ! .venv/bin/python -c 'import streams.cli, deploy.local' 2>/dev/null; then
    say "pip install --no-deps -e '.[test]'"
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -e '.[test]'
else
    say "nudge already installed (editable)"
fi

# --- Node clients of the client tests (package.json, pinned by package-lock.json) ------------
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.nudge-lock 2>/dev/null)" != "$lock_sum" ]; then
    say "npm ci (the official Node and browser clients the tests drive)"
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "$lock_sum" > node_modules/.nudge-lock
else
    say "node_modules already installed"
fi

# --- Kafka's jars (Maven Central -> NUDGE_CACHE_DIR, default ~/.cache/nudge) -----------------
.venv/bin/python - <<'PY'
import time
from deploy.local import kafka

done = kafka.libs_dir().parent / ".complete"
if done.exists():
    print(f"install: Kafka {kafka.KAFKA_VERSION} jars already in {kafka.libs_dir()}")
else:
    started = time.monotonic()
    print(f"install: fetching Kafka {kafka.KAFKA_VERSION} jars with Maven into {kafka.libs_dir()}")
    kafka.fetch_jars()
    print(f"install: fetched in {time.monotonic() - started:.1f}s")
PY

# --- kubeconform (validates deploy/k8s in the tests), pinned, built with go install ----------
kubeconform_version=$(.venv/bin/python -c 'from deploy.k8s.validate import KUBECONFORM_VERSION as v; print(v)')
cache="${NUDGE_CACHE_DIR:-$HOME/.cache/nudge}"
kubeconform="$cache/bin/kubeconform-$kubeconform_version"
if [ -x "$kubeconform" ]; then
    say "kubeconform $kubeconform_version already in $cache/bin"
else
    go=$(command -v go || echo /usr/local/go/bin/go)
    [ -x "$go" ] || { echo "install: Go is needed once to build kubeconform (apt-get install golang-go)" >&2; exit 1; }
    say "building kubeconform $kubeconform_version with go install"
    # Go's module and build caches in a temporary folder, removed after: nothing lands in ~/go.
    gotmp=$(mktemp -d)
    GOBIN="$gotmp/bin" GOMODCACHE="$gotmp/mod" GOCACHE="$gotmp/build" GOPATH="$gotmp" GOFLAGS=-modcacherw \
        "$go" install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
    mkdir -p "$cache/bin"
    mv "$gotmp/bin/kubeconform" "$kubeconform"
    rm -rf "$gotmp"
fi

say "done. Start the local stack with: .venv/bin/nudge stack up"
