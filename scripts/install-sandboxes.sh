#!/usr/bin/env bash
# Install and start what the sandbox backends need, idempotently (safe to run on every CI run):
#   local  -> bubblewrap
#   docker -> Docker Engine (dockerd started here: there is no systemd), the offline base image
#             lmcourse-base:bookworm (debootstrap + docker import: there is no image registry), and
#             the grading image lmcourse-grader:cpu built from templates/docker/Dockerfile.cpu.
# Needs root. Each step is skipped when its result is already there.
#
# Environment: PYTHON (default .venv/bin/python, used to build the grading image),
#              LMCOURSE_DOCKERD_LOG (default /var/log/lmcourse-dockerd.log),
#              DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=lmcourse-base:bookworm
# libstdc++6 and libgomp1: torch's native libraries need them when the host's Python runtime is
# bind-mounted into the container (python3 alone does not pull them in).
BASE_PACKAGES=python3,libstdc++6,libgomp1
DOCKERD_LOG=${LMCOURSE_DOCKERD_LOG:-/var/log/lmcourse-dockerd.log}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-.venv/bin/python}

log() { echo "== install-sandboxes: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "install-sandboxes.sh must run as root (apt-get, dockerd)" >&2
    exit 2
fi

# 1. packages --------------------------------------------------------------------------------
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "bubblewrap, docker.io, debootstrap already installed"
fi

# 2. dockerd ---------------------------------------------------------------------------------
# No bridge, no iptables: sandboxes run with network_mode=none and this host has no NAT to set up.
if docker version >/dev/null 2>&1; then
    log "dockerd already running"
else
    log "starting dockerd (log: $DOCKERD_LOG)"
    setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 100); do
        docker version >/dev/null 2>&1 && break
        sleep 0.2
    done
    if ! docker version >/dev/null 2>&1; then
        echo "dockerd did not come up in 20 s; see $DOCKERD_LOG" >&2
        tail -n 20 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
fi

# 3. offline base image ----------------------------------------------------------------------
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE already present"
else
    root=$(mktemp -d /var/tmp/lmcourse-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    log "debootstrap bookworm ($BASE_PACKAGES) into $root (about 80 s)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" "$MIRROR" >/dev/null
    # Smaller image: the apt lists and caches are of no use without a network.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    log "docker import -> $BASE_IMAGE"
    tar -C "$root" -c . | docker import - "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    trap - EXIT
fi

# 4. grading image ---------------------------------------------------------------------------
if [ -x "$PYTHON" ]; then
    "$PYTHON" -m lmcourse.grader.sandbox.image cpu
else
    log "skipping the grading image: $PYTHON not found (run 'lmcourse image build' later)"
fi
