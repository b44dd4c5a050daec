#!/usr/bin/env bash
# Installs the offline test bed: Debian's docker-registry (a real OCI registry),
# htpasswd (bcrypt auth files for it), a static busybox (the shell that `RUN` steps of the
# FROM-scratch build fixtures copy in: no base image can be pulled here) and a Python venv with
# moto's server (a local AWS) and zizmor (the workflow linter .ci/run runs offline).
# Idempotent: when everything is already there it only checks and prints the paths.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.testbed/venv"
moto_spec='moto[server]==5.*'
# One minor line of zizmor: a newer one may add audits, which should be a deliberate bump here.
zizmor_version='1.32'
zizmor_spec="zizmor==$zizmor_version.*"

log() { printf '[setup-testbed] %s\n' "$*"; }
die() { printf '[setup-testbed] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
        apt_updated=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

# 1. docker-registry + htpasswd (Debian packages).
missing_pkgs=()
command -v docker-registry >/dev/null 2>&1 || missing_pkgs+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing_pkgs+=(apache2-utils)
# busybox-static, not busybox: the image fixtures need a binary that runs with no libc.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
    || missing_pkgs+=(busybox-static)
if [ "${#missing_pkgs[@]}" -gt 0 ]; then
    apt_install "${missing_pkgs[@]}"
fi

# 2. moto server in a venv under .testbed/ (gitignored).
if [ ! -x "$venv/bin/moto_server" ]; then
    python="${PYTHON:-python3}"
    command -v "$python" >/dev/null 2>&1 || apt_install python3
    python="$(command -v "${PYTHON:-python3}")" || die "python3 not found after install"
    # Debian's python3 needs python3-venv for ensurepip; a half-made venv is removed first.
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    log "creating venv $venv (python: $python)"
    "$python" -m venv "$venv" || die "python3 -m venv $venv failed"
    log "pip install '$moto_spec' (takes a minute on a fresh machine)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$moto_spec" \
        || { rm -rf "$venv"; die "pip install '$moto_spec' failed"; }
fi

# 3. zizmor in the same venv; reinstalled when missing or of another minor line.
zizmor_bin="$venv/bin/zizmor"
case "$("$zizmor_bin" --version 2>/dev/null || true)" in
    "zizmor $zizmor_version."*) ;;
    *)
        log "pip install '$zizmor_spec'"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$zizmor_spec" \
            || die "pip install '$zizmor_spec' failed"
        ;;
esac

# 4. Check and report.
registry_bin="$(command -v docker-registry || true)"
htpasswd_bin="$(command -v htpasswd || true)"
moto_bin="$venv/bin/moto_server"
[ -n "$registry_bin" ] || die "docker-registry is still missing (apt package docker-registry)"
[ -n "$htpasswd_bin" ] || die "htpasswd is still missing (apt package apache2-utils)"
[ -x /bin/busybox ] || die "/bin/busybox is still missing (apt package busybox-static)"
[ -x "$moto_bin" ] || die "$moto_bin is missing or not executable"
"$venv/bin/python" -c 'import moto.server' >/dev/null 2>&1 \
    || die "moto is not importable in $venv (delete $venv and rerun)"
"$zizmor_bin" --version >/dev/null 2>&1 || die "$zizmor_bin does not run (delete $venv and rerun)"

log "docker-registry: $registry_bin"
log "htpasswd:        $htpasswd_bin"
log "moto_server:     $moto_bin ($("$venv/bin/python" -c 'import moto; print(moto.__version__)'))"
log "zizmor:          $zizmor_bin ($("$zizmor_bin" --version))"
