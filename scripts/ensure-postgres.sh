#!/usr/bin/env bash
# Make sure PostgreSQL server binaries are installed (Debian package); the tests
# start and stop their own throwaway cluster with them.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q postgresql
