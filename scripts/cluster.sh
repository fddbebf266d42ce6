#!/usr/bin/env bash
# The 3-node NATS cluster of docker-compose.yml from local nats-server processes:
#   scripts/cluster.sh up       start it (idempotent), print "NATS cluster is ready"
#   scripts/cluster.sh down     stop it
#   scripts/cluster.sh status   each node's pid and readiness
#   scripts/cluster.sh wait     wait until a cluster on those ports is ready (docker-up.sh)
# The logic is in scripts/cluster.ts, shared with the test harness (test/support/nats-cluster.ts).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tsx="$root/node_modules/.bin/tsx"
if [ ! -x "$tsx" ]; then
  # A fresh clone: install the packages first, the way every make target does.
  make -C "$root" --no-print-directory install >&2
fi
exec "$tsx" "$root/scripts/cluster.ts" "$@"
