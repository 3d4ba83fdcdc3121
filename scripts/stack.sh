#!/usr/bin/env bash
# The local stand-ins for AWS: a moto server and a throwaway PostgreSQL cluster,
# both on 127.0.0.1, with their state in .state/ (git-ignored).
#
#   scripts/stack.sh up      start both (no-op for what already runs)
#   scripts/stack.sh down    stop both and forget their state
#   scripts/stack.sh env     print the environment that points clients at them
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=$PWD/.state
MOTO_PORT=${LIFEBOAT_MOTO_PORT:-5055}
PG_PORT=${LIFEBOAT_PG_PORT:-55432}
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=$STATE/pg
PG_PASSWORD_FILE=$STATE/pg-password
# The server runs as `postgres`: in a checkout it cannot enter (a clone under
# a 0700 home or `mktemp -d`), its data lives under /var/tmp instead.
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 \
   && ! runuser -u postgres -- test -r "$PWD/tools/requirements.txt" 2>/dev/null; then
  PG_DATA=/var/tmp/lifeboat-pg-$(printf '%s' "$PWD" | sha256sum | cut -c1-12)
fi

# PostgreSQL refuses to run as root; run it as the postgres user then.
pg() {
  # From /, which postgres can always enter (the checkout may be closed to it).
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

moto_up() {
  if curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then return; fi
  echo '[]' > "$STATE/amis.json"   # no public AMIs: moto ignores Owners=self
  # tests/moto/sitecustomize.py closes the emulator's gaps that Lifeboat meets (as the tests do).
  PYTHONPATH=$PWD/tests/moto MOTO_AMIS_PATH=$STATE/amis.json nohup .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" \
    > "$STATE/moto.log" 2>&1 &
  echo $! > "$STATE/moto.pid"
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && { echo "moto server on 127.0.0.1:$MOTO_PORT"; return; }
    sleep 0.2
  done
  echo "moto server did not start; see $STATE/moto.log" >&2; exit 1
}

pg_up() {
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ -f "$PG_PASSWORD_FILE" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$PG_PASSWORD_FILE"
    chmod 700 "$PG_DATA"; chmod 644 "$PG_PASSWORD_FILE"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DATA"
    # The password reaches initdb on its standard input: the file may lie where postgres cannot look.
    pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=scram-sha-256 --pwfile=/dev/stdin <"$PG_PASSWORD_FILE" >/dev/null
  fi
  if pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then return; fi
  pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA" start >/dev/null
  echo "PostgreSQL 15 on 127.0.0.1:$PG_PORT (user postgres, password in $PG_PASSWORD_FILE)"
}

down() {
  if [ -f "$STATE/moto.pid" ]; then
    kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true
    rm -f "$STATE/moto.pid"
  fi
  if [ -f "$PG_DATA/PG_VERSION" ]; then
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DATA" "$PG_PASSWORD_FILE"
  fi
  echo "stand-ins stopped"
}

env_lines() {
  cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export LIFEBOAT_PG_PORT=$PG_PORT
ENV
}

mkdir -p "$STATE"
case "${1:-}" in
  up) moto_up; pg_up ;;
  down) down ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
