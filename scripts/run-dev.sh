#!/usr/bin/env bash
# `make run`: the embedded default with demo data. Starts a private Redis on a Unix socket
# under var/ (saved to var/redis.rdb, so live counters survive a restart) that the seed
# step, the web server and beat all share; migrates, seeds, then serves with beat beside
# it. Ctrl-C stops everything it started, and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-echonest_analytics.settings_local}

pids=()
stop_all() {
  # Children first: runserver's autoreloader serves from a child process of its own.
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 0' INT TERM

if [ -z "${REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  socket="$PWD/var/redis.sock"
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 --dir "$PWD/var" \
    --dbfilename redis.rdb --save 60 1 --appendonly no --loglevel warning \
    --logfile "$PWD/var/redis.log" &
  pids+=($!)
  for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
  # One Redis for every process; tasks still run eagerly in beat's process (no worker).
  export REDIS_URL="unix://$socket?db=0" CELERY_BROKER_URL=memory:// CELERY_TASK_ALWAYS_EAGER=true
  echo "Live counters: private Redis at $socket (saved to var/redis.rdb)"
else
  [ -n "${REDIS_URL:-}" ] || echo "redis-server not found: live counters are per process (install Debian's redis-server to share them)"
fi

# The demo's shared key for GET /api/analytics/usage (X-Dash-Key), kept across runs.
if [ -z "${ANALYTICS_DASH_KEY:-}" ]; then
  [ -s var/demo-dash-key ] || $BIN/python -c 'import secrets; print(secrets.token_urlsafe(24))' > var/demo-dash-key
  export ANALYTICS_DASH_KEY=$(cat var/demo-dash-key)
fi

$BIN/python manage.py migrate --noinput
$BIN/python manage.py seed_demo
# A staff API token for the admin (Authorization: Token …), the same on every run.
$BIN/python manage.py drf_create_token admin | awk '{print $3}' > var/demo-api-token
chmod 600 var/demo-dash-key var/demo-api-token
echo "Usage API key (X-Dash-Key): $ANALYTICS_DASH_KEY   (also in var/demo-dash-key)"
echo "Staff API token for admin:  $(cat var/demo-api-token)   (also in var/demo-api-token)"
echo "Serving http://$HOST:$PORT/ (admin at /admin/); scheduled jobs run in celery beat. Ctrl-C stops both."
$BIN/celery -A echonest_analytics beat --loglevel=INFO --pidfile= &
pids+=($!)
$BIN/python manage.py runserver "$HOST:$PORT" &
pids+=($!)
# Wait in the shell (not on a foreground child) so Ctrl-C and TERM stop everything at once.
wait -n
