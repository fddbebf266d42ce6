#!/usr/bin/env bash
# make docker-down: stops and removes the docker-compose cluster (its volumes are kept;
# `docker compose down -v` drops the JetStream data too).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

no_engine() {
  cat >&2 <<MSG
No Docker engine is available ($1), so there is no Docker cluster to stop.
A cluster started with \`make cluster-up\` (local nats-server processes) stops with
\`make cluster-down\`.
MSG
  exit 1
}

command -v docker >/dev/null 2>&1 || no_engine "the docker command is not installed"
docker info >/dev/null 2>&1 || no_engine "\`docker info\` gets no answer from a daemon"

if docker compose version >/dev/null 2>&1; then
  docker compose down
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose down
else
  echo "Docker runs, but neither \`docker compose\` nor \`docker-compose\` is installed." >&2
  exit 1
fi
