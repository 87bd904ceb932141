#!/usr/bin/env bash
# System packages the test suites need, for a bare Debian 12 machine (run as root).
# Idempotent: apt is only touched when something is missing, so it is cheap to run
# on every CI job. Python packages come from `make venv`, not from here.
#
# The tests start their own PostgreSQL and Redis (tests/support/servers.py) on free
# ports; the system-wide services that the packages install are never used, so we
# keep them from running.
set -euo pipefail

missing=()
# PostgreSQL server binaries are off PATH on Debian (/usr/lib/postgresql/<ver>/bin).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null \
    || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v wrk >/dev/null || missing+=(wrk)
# `make bench` puts nginx in front of the services (it starts its own; never the package's).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v make >/dev/null || missing+=(make)
# `make venv` needs python3 with the venv module (a separate package on Debian).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv)

if ((${#missing[@]} == 0)); then
    echo "install-deps: nothing to install"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

# The postinst scripts may have started the default PostgreSQL cluster, Redis and nginx:
# stop them and keep them from starting at boot. Errors are fine (no init system
# in a container, service not installed by this run, ...).
for svc in postgresql redis-server nginx; do
    service "$svc" stop >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null; then systemctl disable "$svc" >/dev/null 2>&1 || true; fi
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
done
echo "install-deps: done"
