#!/usr/bin/env bash
# rest-invocation: everything over curl against the processor's HTTP API.
# JSON in and out; the routes are described at /openapi.json.
#
#   make example-rest-invocation
#
# Env: DURABLE_HTTP_URL (default http://localhost:8080), DURABLE_API_TOKEN (sent as a bearer
# token when set, as a processor started with it wants). Needs the cluster, HelloService and
# the processor running (examples/README.md), plus curl and node (to read JSON fields).
set -euo pipefail

BASE="${DURABLE_HTTP_URL:-http://localhost:8080}"
BASE="${BASE%/}"
RUN="$(date +%s)-$$"
# The token goes in the header; what is printed names the variable, never its value.
AUTH=()
if [[ -n "${DURABLE_API_TOKEN:-}" ]]; then
  AUTH=(-H "Authorization: Bearer $DURABLE_API_TOKEN")
fi

# Prints a curl command, runs it, prints the answer; the answer is also left in $OUT.
call() {
  echo "\$ curl -X $1 $BASE$2${AUTH[0]:+ -H \"Authorization: Bearer \$DURABLE_API_TOKEN\"}${IDEMPOTENCY_KEY:+ -H 'Idempotency-Key: $IDEMPOTENCY_KEY'}${3:+ -d '$3'}"
  OUT="$(curl -sS -X "$1" "$BASE$2" "${AUTH[@]}" -H 'content-type: application/json' ${3:+-d "$3"} ${IDEMPOTENCY_KEY:+-H "Idempotency-Key: $IDEMPOTENCY_KEY"})"
  echo "$OUT"
  echo
}

# A field of the JSON in $OUT, e.g. `field invocation_id` or `field output.message`.
field() {
  node -e 'let v = JSON.parse(process.argv[1]); for (const k of process.argv[2].split(".")) v = v?.[k]; console.log(typeof v === "string" ? v : JSON.stringify(v))' "$OUT" "$1"
}

# Polls GET /api/workflows/$1 until its status is $2 (20 s at most); leaves the state in $OUT.
await_status() {
  for _ in $(seq 100); do
    OUT="$(curl -sS "${AUTH[@]}" "$BASE/api/workflows/$1")"
    if [[ "$(field status)" == "$2" ]]; then
      echo "\$ curl $BASE/api/workflows/$1${AUTH[0]:+ -H \"Authorization: Bearer \$DURABLE_API_TOKEN\"}    # until its status is $2"
      echo "$OUT"
      echo
      return 0
    fi
    sleep 0.2
  done
  echo "error: invocation $1 did not become $2 within 20 s: $OUT" >&2
  exit 1
}

if ! curl -sSf "$BASE/health" >/dev/null 2>&1; then
  echo "error: no processor answers at $BASE: start one with \`make run-processor\` (or set DURABLE_HTTP_URL)" >&2
  exit 1
fi
if [[ "$(curl -sS -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$BASE/openapi.json")" == 401 ]]; then
  echo "error: the processor at $BASE wants a bearer token: set DURABLE_API_TOKEN to the processor's" >&2
  exit 1
fi

echo "== Invoke and wait for the result (?wait=true); the Idempotency-Key becomes the invocation ID"
IDEMPOTENCY_KEY="greeting-$RUN" call POST '/api/workflows/hello_workflow/invoke?wait=true' '{"name":"REST"}'
echo "status: $(field status), output: $(field output)"
echo

echo "== The same key again: the same invocation, not a second run"
IDEMPOTENCY_KEY="greeting-$RUN" call POST '/api/workflows/hello_workflow/invoke' '{"name":"REST"}'
echo "duplicate: $(field duplicate)"
echo

echo "== Invoke without waiting (202), then read its state and journal until it has completed"
call POST '/api/workflows/custom_workflow/invoke' '{"names":["Ada","Grace"]}'
ID="$(field invocation_id)"
await_status "$ID" completed
echo "status: $(field status), journal steps: $(field journal_length)"
echo

echo "== Pause, resume and cancel a sleeping workflow"
call POST '/api/workflows/reminder/invoke' '{"name":"sleeper","sleepMs":600000}'
SLEEPER="$(field invocation_id)"
await_status "$SLEEPER" suspended
call POST "/api/workflows/$SLEEPER/pause"
await_status "$SLEEPER" paused
call POST "/api/workflows/$SLEEPER/resume"
call POST "/api/workflows/$SLEEPER/cancel"
# Resumed, it may be running again: a running invocation stops at its next step boundary.
await_status "$SLEEPER" cancelled
echo "status: $(field status)"
echo

echo "== A failed invocation, and its retry under a new ID (same input: it fails again)"
call POST '/api/workflows/order_processing/invoke?wait=true' '{"orderId":"bad-order","amount":-1}'
FAILED="$(field invocation_id)"
echo "status: $(field status), error: $(field error)"
call POST "/api/workflows/$FAILED/retry"
echo

echo "== Errors are JSON with a code: an unknown invocation is a 404"
call GET "/api/workflows/no-such-invocation-$RUN"
