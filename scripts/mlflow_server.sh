#!/usr/bin/env bash
# The cluster's MLflow tracking server with MLflow's built-in basic auth (`--app-name basic-auth`):
# every request needs a user name and password (clients: MLFLOW_TRACKING_USERNAME /
# MLFLOW_TRACKING_PASSWORD in their environment); artifacts are proxied, so clients need no S3 access.
#
#   MLFLOW_AUTH_ADMIN_PASSWORD   required on the first start only: the `admin` user is created with it
#                                (then kept hashed in the user database; rotate it with the auth API).
#                                Give it in the environment (e.g. `read -rs`), never in a file.
#   MLFLOW_BACKEND_STORE_URI     runs/params/metrics (default: sqlite in MLFLOW_DATA_DIR;
#                                a cluster: postgresql://mlflow@DB_HOST:5432/mlflow, password in ~/.pgpass)
#   MLFLOW_ARTIFACTS_DESTINATION artifact store (default: MLFLOW_DATA_DIR/artifacts; a cluster: s3://BUCKET/mlflow)
#   MLFLOW_DATA_DIR              working dir: the user database basic_auth.db (configs/mlflow_basic_auth.ini)
#                                and the default stores (default: ~/mlflow)
#   MLFLOW_HOST / MLFLOW_PORT    listen address (default 127.0.0.1:5000; the cluster head: its private IP)
#   MLFLOW_FLASK_SERVER_SECRET_KEY  CSRF key of the auth app; default: a random one for this process
#   PYTHON                       interpreter with mlflow[auth] (default: python)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${MLFLOW_DATA_DIR:-$HOME/mlflow}"
mkdir -p "$data"
cd "$data"
export MLFLOW_AUTH_CONFIG_PATH="${MLFLOW_AUTH_CONFIG_PATH:-$here/configs/mlflow_basic_auth.ini}"
if [ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]; then
    MLFLOW_FLASK_SERVER_SECRET_KEY="$("${PYTHON:-python}" -c 'import secrets; print(secrets.token_hex(32))')"
    export MLFLOW_FLASK_SERVER_SECRET_KEY
fi
if [ ! -e basic_auth.db ] && [ -z "${MLFLOW_AUTH_ADMIN_PASSWORD:-}" ] \
        && grep -q '^database_uri = sqlite:///basic_auth.db' "$MLFLOW_AUTH_CONFIG_PATH"; then
    echo "mlflow_server.sh: first start: set MLFLOW_AUTH_ADMIN_PASSWORD (e.g. read -rs MLFLOW_AUTH_ADMIN_PASSWORD; export MLFLOW_AUTH_ADMIN_PASSWORD)" >&2
    exit 2
fi
exec "${PYTHON:-python}" -m mlflow server --app-name basic-auth \
    --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" \
    --backend-store-uri "${MLFLOW_BACKEND_STORE_URI:-sqlite:///$data/mlflow.db}" \
    --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-$data/artifacts}" \
    --workers "${MLFLOW_WORKERS:-1}"
