#!/bin/sh
# Entrypoint of the mltrainer image (the dashboard, the Dask scheduler and the workers).
#
# The app reads POLYGON_API_KEY and FRED_API_KEY from the environment (or from
# .streamlit/secrets.toml, which is never in the image). Compose and Swarm hand secrets to
# a container as files, /run/secrets/<name>; this script turns each such file into the
# variable the app reads, then replaces itself with the command (exec, so the command
# keeps PID 1 and gets the signals):
#
#   $MLTRAINER_SECRETS_DIR/polygon_api_key  ->  POLYGON_API_KEY
#   $MLTRAINER_SECRETS_DIR/fred_api_key     ->  FRED_API_KEY
#
# MLTRAINER_SECRETS_DIR defaults to /run/secrets. A missing or empty file leaves the
# variable as it was (set by the environment, e.g. a Kubernetes secretKeyRef, or unset);
# a non-empty file wins over the environment. Values are never printed.
set -eu

secrets_dir="${MLTRAINER_SECRETS_DIR:-/run/secrets}"

# load_secret VARIABLE FILE_NAME
load_secret() {
    secret_file="${secrets_dir}/$2"
    if [ ! -e "${secret_file}" ]; then
        return 0
    fi
    if [ ! -r "${secret_file}" ]; then
        uid="$(id -u)"
        echo "mltrainer-entrypoint: ${secret_file} is not readable by uid ${uid};" \
            "$1 is left as it was" >&2
        return 0
    fi
    if [ -s "${secret_file}" ]; then
        secret_value="$(cat "${secret_file}")"
        export "$1=${secret_value}"
        unset secret_value
    fi
}

load_secret POLYGON_API_KEY polygon_api_key
load_secret FRED_API_KEY fred_api_key
unset secret_file secrets_dir uid

exec "$@"
