#!/usr/bin/env bash
# make docker-up: the 3-node cluster of docker-compose.yml, then a wait for real readiness
# (every node's /healthz ok and a JetStream meta leader, 30 s deadline), then
# "NATS cluster is ready". Without a Docker engine it says so and points to `make cluster-up`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

no_engine() {
  cat >&2 <<MSG
No Docker engine is available ($1).
Without Docker, \`make cluster-up\` starts the same 3-node NATS cluster (same ports: clients
4222-4224, monitoring 8222-8224) from local nats-server processes, and \`make cluster-down\`
stops it.
MSG
  exit 1
}

command -v docker >/dev/null 2>&1 || no_engine "the docker command is not installed"
docker info >/dev/null 2>&1 || no_engine "\`docker info\` gets no answer from a daemon"

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "Docker runs, but neither \`docker compose\` nor \`docker-compose\` is installed." >&2
  exit 1
fi

"${compose[@]}" up -d
# The readiness check is the one the local cluster and the tests use (scripts/cluster.ts).
exec scripts/cluster.sh wait
