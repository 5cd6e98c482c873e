#!/usr/bin/env bash
# Installs what pgherd's demo and tests need and are missing: Debian packages (as root, through
# apt-get; otherwise it names them and stops) and npm packages (when package-lock.json changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# package -> a file it provides (checked instead of dpkg, so a source-built install counts too)
declare -A NEEDS=(
  [postgresql-15]=/usr/lib/postgresql/15/bin/initdb
  [postgresql-client-15]=/usr/lib/postgresql/15/bin/psql
  [redis-server]=/usr/bin/redis-server
  [openssh-server]=/usr/sbin/sshd
  [openssh-client]=/usr/bin/ssh-keygen
  [chromium]=/usr/lib/chromium/chromium
  [util-linux]=/usr/bin/setpriv
  [procps]=/usr/bin/pgrep
  [bind9]=/usr/sbin/named
  [bind9-dnsutils]=/usr/bin/dig
  [pgbouncer]=/usr/sbin/pgbouncer
  [slapd]=/usr/sbin/slapd
  [ldap-utils]=/usr/bin/ldapsearch
  [openssl]=/usr/bin/openssl
  [patroni]=/usr/bin/patroni
  [etcd-server]=/usr/bin/etcd
  [pgbackrest]=/usr/bin/pgbackrest
  # pgherd's own control plane across sites (lib/lab/control-plane.ts): HAProxy in front of its
  # database's Patroni members, Redis Sentinel for its queue.
  [haproxy]=/usr/sbin/haproxy
  [redis-sentinel]=/usr/bin/redis-sentinel
  # patronictl's https client (urllib3 with pyOpenSSL) reads a certificate's DNS names with idna, which
  # Debian's patroni does not pull in: without it patronictl switchover "falls back to DCS" silently.
  [python3-idna]=/usr/lib/python3/dist-packages/idna/__init__.py
  # The lab's EBS volumes (lib/lab/volumes.ts): XFS on loop devices, grown by xfs_growfs through sudo.
  [xfsprogs]=/usr/sbin/mkfs.xfs
  [sudo]=/usr/bin/sudo
  # The lab's whole PostgreSQL 17 (lib/lab/debian-build.ts): Debian 13's packages, their programs pointed
  # at Debian 13's C library beside them; checked with Debian's archive keys as apt checks them.
  [patchelf]=/usr/bin/patchelf
  [gpgv]=/usr/bin/gpgv
  [debian-archive-keyring]=/usr/share/keyrings/debian-archive-keyring.gpg
  [xz-utils]=/usr/bin/xz
)
# `bootstrap.sh bench`: also Django 3.2's admin, which `npm run bench -- changelist` runs beside pgherd.
if [ "${1:-}" = bench ]; then
  NEEDS[python3-django]=/usr/lib/python3/dist-packages/django/__init__.py
  NEEDS[python3-psycopg2]=/usr/lib/python3/dist-packages/psycopg2/__init__.py
  NEEDS[python3-gunicorn]=/usr/lib/python3/dist-packages/gunicorn/__init__.py
fi
missing=()
for pkg in "${!NEEDS[@]}"; do
  [ -e "${NEEDS[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# moto, the lab's AWS emulator: on PATH (pip installs it there on some machines), else in a virtual
# environment of pgherd's own (Debian 12 packages no moto; its pip refuses system-wide installs).
MOTO_VENV="$HOME/.cache/pgherd/moto"
if [ -z "${PGHERD_MOTO_SERVER:-}" ] && ! command -v moto_server >/dev/null && [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "bootstrap: installing Debian packages: python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
      echo "bootstrap: install python3-venv (sudo apt-get install python3-venv), or moto: pip install 'moto[server]'" >&2
      exit 1
    fi
  fi
  echo "bootstrap: installing moto (the lab's AWS emulator) in $MOTO_VENV"
  if ! { python3 -m venv "$MOTO_VENV" && "$MOTO_VENV/bin/pip" install -q 'moto[server]>=5.1,<6'; }; then
    echo "bootstrap: could not install moto; install it with: pip install 'moto[server]' (or set PGHERD_MOTO_SERVER)" >&2
    exit 1
  fi
fi

stamp=node_modules/.pgherd-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing npm packages"
  # npm ci refuses lockfiles that list platform packages this registry mirror lacks: fall back.
  if ! npm ci --no-audit --no-fund --loglevel=error > /tmp/pgherd-npm-ci.log 2>&1; then
    echo "bootstrap: npm ci failed (see /tmp/pgherd-npm-ci.log); trying npm install"
    npm install --no-audit --no-fund --loglevel=error
  fi
  echo "$want" > "$stamp"
fi

# Debian 13's PostgreSQL 17 for the lab (pg_upgrade, pg_basebackup): once per machine.
node --import tsx lib/lab/debian-build.ts
