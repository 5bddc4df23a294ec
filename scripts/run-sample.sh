#!/usr/bin/env bash
# Run the sample project on the embedded default (SQLite + database cache + django-q2's ORM broker).
#
# From a fresh clone: creates .venv, installs the project into it, migrates, creates the cache
# table, prepares the demo user and books, then runs the web server and one qcluster together.
# Ctrl-C stops both. Safe to run again. Environment: PORT (default 8000), HOST (127.0.0.1),
# PYTHON (python3), VENV (.venv), STOP_GRACE (seconds to wait for a clean stop, default 15);
# DATABASE_URL / REDIS_URL switch to the production tier.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8000}"
HOST="${HOST:-127.0.0.1}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
export DJANGO_SETTINGS_MODULE=sample.settings
export PYTHONUNBUFFERED=1

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "run-sample: needs Python 3.10 or newer as '$PYTHON' (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$PY" ]; then
  echo "== creating the virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.powercrud-async-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! "$PY" -c 'import powercrud_async' 2>/dev/null; then
  echo "== installing the project (pip install -e .)"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -e .
  touch "$stamp"
fi

echo "== migrate"
"$PY" manage.py migrate --noinput
"$PY" manage.py createcachetable
echo "== demo data"
"$PY" manage.py demo_setup --skip-migrate

web=""
worker=""
force=""
GRACE="${STOP_GRACE:-15}"
stop() {
  trap 'force=1' INT TERM  # a second Ctrl-C stops waiting
  trap - EXIT
  echo
  echo "== stopping the web server and the qcluster (a running job may finish first; Ctrl-C again to force)"
  # qcluster's main process stops its own workers; signalling its whole group would kill them
  # under it and leave it waiting for them.
  if [ -n "$worker" ]; then kill -TERM "$worker" 2>/dev/null || true; fi
  if [ -n "$web" ]; then kill -TERM -- "-$web" 2>/dev/null || true; fi
  for _ in $(seq 1 $((GRACE * 2))); do
    [ -n "$force" ] && break
    alive=""
    for pid in $web $worker; do
      if kill -0 -- "-$pid" 2>/dev/null; then alive=1; fi
    done
    [ -z "$alive" ] && break
    sleep 0.5 || true  # interrupted by a second Ctrl-C: errexit must not skip the kill
  done
  for pid in $web $worker; do
    if kill -0 -- "-$pid" 2>/dev/null; then
      echo "run-sample: process group $pid still running; killing it (cleanup reclaims a job cut short)" >&2
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  echo "== stopped"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# Job control: each background job runs in its own process group, so one signal reaches every
# process it started (runserver's autoreloader child, qcluster's workers).
set -m
"$PY" manage.py runserver "$HOST:$PORT" &
web=$!
"$PY" manage.py qcluster &
worker=$!
set +m

cat <<BANNER

  The sample runs at http://$HOST:$PORT/  (dashboard: http://$HOST:$PORT/sample/async-dashboard/)
  Log in with the demo user printed above. Ctrl-C stops the web server and the qcluster.

BANNER

status=0
while true; do
  if ! kill -0 "$web" 2>/dev/null; then
    echo "run-sample: the web server stopped (is port $PORT free? try PORT=8001)" >&2
    status=1
    break
  fi
  if ! kill -0 "$worker" 2>/dev/null; then
    echo "run-sample: the qcluster stopped" >&2
    status=1
    break
  fi
  sleep 1 || true
done
stop
exit "$status"
