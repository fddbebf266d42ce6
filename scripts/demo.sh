#!/usr/bin/env bash
# make demo: the usage guide end to end in one command. Starts the 3-node cluster (unless
# one already answers on :8222), HelloService and the processor, submits hello_workflow,
# prints the result and its journal, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_GRPC_PORT=${DEMO_GRPC_PORT:-19090}
export SERVICE_HELLOSERVICE_ADDRESS="127.0.0.1:${DEMO_GRPC_PORT}"
logs=.data/demo
mkdir -p "$logs"
started_cluster=0
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$started_cluster" = 1 ]; then scripts/cluster.sh down; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until a log file shows a line, or fails naming what did not start.
wait_for_line() {
  local file=$1 pattern=$2 what=$3 deadline=$((SECONDS + 60))
  until grep -q -- "$pattern" "$file" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "$what did not start; its log:" >&2; cat "$file" >&2; exit 1; fi
    sleep 0.2
  done
}

echo "==> NATS cluster"
if curl -fsS http://localhost:8222/healthz >/dev/null 2>&1; then
  echo "A NATS server already answers on :8222; using it."
else
  scripts/cluster.sh up
  started_cluster=1
fi

echo "==> HelloService on :${DEMO_GRPC_PORT}"
GRPC_PORT=$DEMO_GRPC_PORT ./bin/hello-service >"$logs/hello-service.log" 2>&1 &
pids+=($!)
wait_for_line "$logs/hello-service.log" "HelloService listening" "HelloService"
cat "$logs/hello-service.log"

echo "==> Processor"
./bin/processor >"$logs/processor.log" 2>&1 &
pids+=($!)
wait_for_line "$logs/processor.log" "Processor started" "The processor"
cat "$logs/processor.log"

echo "==> Client: submitting hello_workflow"
./bin/client | tee "$logs/client.log"
id=$(sed -n 's/.*Invocation ID: //p' "$logs/client.log" | head -n 1)

echo "==> Processor log of the run"
wait_for_line "$logs/processor.log" "Execution completed successfully: $id" "The run"
grep -- "$id\|Hello workflow completed" "$logs/processor.log"

echo "==> HelloService log"
grep "Received SayHello" "$logs/hello-service.log"

echo "==> ./bin/inspect $id"
./bin/inspect "$id"
echo "==> Demo finished; stopping what it started."
