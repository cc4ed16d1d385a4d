#!/usr/bin/env bash
# Starts one process per node from examples/peers.toml, shows a create
# converging, kills the store with SIGKILL, restarts it from its data
# directory, and shows that nothing was lost. Stops everything on exit.
#
#   examples/cluster.sh            # data in ./data-cluster (removed first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/controlplane
data=${DATA:-data-cluster}
rm -rf "$data" && mkdir -p "$data"
declare -A pids
start() {
  "$bin" serve --role "$1" --peers examples/peers.toml --data "$data" >"$data/$1.log" 2>&1 &
  pids[$1]=$!
}
trap 'kill -9 "${pids[@]}" 2>/dev/null || true' EXIT
for role in store billing api-0 api-1 controller-0 controller-1 controller-2 worker-0 worker-1 worker-2 http-0; do
  start "$role"
done
api=http://127.0.0.1:8080
until curl -fs "$api/readyz" >/dev/null; do sleep 0.2; done
echo "ready: $(curl -s "$api/readyz")"

body='{"name": "web", "spec": {"replicas": 3, "image": 1}}'
created=$(curl -s -X POST "$api/v1/resources" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: example-1' -d "$body")
echo "created: $created"
id=$(echo "$created" | sed 's/.*"id":"\([^"]*\)".*/\1/')

echo "kill -9 the store, then start it again from $data/store"
{ kill -9 "${pids[store]}" && wait "${pids[store]}"; } 2>/dev/null || true
sleep 0.5; start store
until curl -fs "$api/readyz" >/dev/null; do sleep 0.2; done
echo "read back:  $(curl -s "$api/v1/resources/$id")"
echo "replayed:   $(curl -s -i -X POST "$api/v1/resources" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: example-1' -d "$body" | grep -i -E '^(HTTP|idempotent-replayed)' | tr -d '\r' | tr '\n' ' ')"
echo "charges for example-1 in billing's history: $(grep -c '"ChargeExecuted":{"key":"example-1"' "$data/billing/history.jsonl")"
