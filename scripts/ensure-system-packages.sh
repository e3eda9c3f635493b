#!/usr/bin/env bash
# The system packages the tests need (Debian): PostgreSQL server binaries (the tests
# start and stop their own throwaway cluster with them), systemd-analyze, and chromium (the /docs page
# is tested in a real headless browser).
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
# systemd-analyze verifies the unit files in tests/ops.
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
