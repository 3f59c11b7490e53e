#!/usr/bin/env bash
# Installs PostgreSQL's server binaries (initdb, postgres) when they are
# missing. streamjoin's dev mode and tests start a private cluster from them;
# nothing here starts a system-wide server.
set -euo pipefail

have_pg() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1
}

if have_pg; then
  exit 0
fi

echo "PostgreSQL server binaries not found; installing them" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: need root (or sudo) to install PostgreSQL: apt-get install postgresql" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install PostgreSQL's server binaries (initdb, postgres) yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql >/dev/null
have_pg || { echo "error: PostgreSQL installed but initdb/postgres still not found" >&2; exit 1; }
echo "PostgreSQL installed: $(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin)" >&2
