#!/bin/sh
# Clacks container entrypoint.
#
#   serve (default)            wait for the database, migrate once (unless
#                              CLACKS_MIGRATE_ON_START=False), then exec gunicorn
#   migrate                    wait for the database, migrate once, exit (a
#                              Kubernetes Job before a rollout)
#   every SECONDS "CMD ARGS"…  run these manage.py commands in turn, sleep, repeat
#                              (the background jobs now run inside `serve`; this
#                              stays for compose files that still use it)
#   manage CMD [ARGS…]         one manage.py command (create_app, createsuperuser…)
#   dbbackup ARGS…             bin/dbbackup (backup, check, restore)
#   anything else              run as given (a shell, for instance)
set -eu
cd "$(dirname "$0")/.."

log() {
    # One JSON line, like everything else the container prints.
    printf '{"time":"%s","level":"%s","logger":"entrypoint","message":"%s"}\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%S+00:00)" "$1" "$2"
}

database_answers() {
    python -c 'import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.db import connection
connection.ensure_connection()'
}

wait_for_database() {
    # Compose waits for PostgreSQL's healthcheck; other orchestrators may not.
    deadline=$(( $(date +%s) + ${CLACKS_DB_WAIT_SECONDS:-60} ))
    until database_answers 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log ERROR "database unreachable after ${CLACKS_DB_WAIT_SECONDS:-60} s"
            database_answers  # prints why
            exit 1
        fi
        sleep 2
    done
}

migrate() {
    log INFO "applying migrations"
    # Without the statement timeout: an index build may take longer than any request.
    # migrate_locked: instances starting together apply them once (a PostgreSQL
    # advisory lock held in a transaction; telemetry/management/commands/migrate_locked.py).
    CLACKS_DB_STATEMENT_TIMEOUT_MS=0 python manage.py migrate_locked --verbosity 0
    log INFO "migrations applied"
}

# Only gunicorn's workers write metrics files (config/gunicorn.py); a command run
# with the variable set would leave files behind and add its counts to the server's.
metrics_dir=${PROMETHEUS_MULTIPROC_DIR:-}
unset PROMETHEUS_MULTIPROC_DIR

command=${1:-serve}
[ $# -gt 0 ] && shift

# The state folder (CLACKS_VAR_DIR), and a development key if DEBUG is on without
# SECRET_KEY: importing the settings creates nothing (bin/prepare).
case "$command" in
    serve|migrate|every|manage|dbbackup)
        python bin/prepare || { log ERROR "bin/prepare failed"; exit 1; }
        ;;
esac

case "$command" in
    serve)
        wait_for_database
        if [ "${CLACKS_MIGRATE_ON_START:-True}" = "True" ]; then
            migrate
        fi
        log INFO "starting gunicorn"
        if [ -n "$metrics_dir" ]; then
            export PROMETHEUS_MULTIPROC_DIR="$metrics_dir"
        fi
        exec gunicorn --config config/gunicorn.py config.wsgi
        ;;
    migrate)
        wait_for_database
        migrate
        ;;
    every)
        interval=${1:?every SECONDS "command args" ...}
        shift
        # PID 1 ignores SIGTERM unless it says otherwise: stop at once on docker stop.
        trap 'exit 0' TERM INT
        while :; do
            for job in "$@"; do
                # shellcheck disable=SC2086 -- each job is a command line, split on purpose
                python manage.py $job || log WARNING "manage.py $job failed; trying again next round"
            done
            sleep "$interval" &
            wait $!
        done
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    dbbackup)
        exec python bin/dbbackup "$@"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
