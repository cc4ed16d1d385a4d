#!/usr/bin/env bash
# Break a live cluster and watch it heal.
#
# Starts `serve`, puts load on it, partitions the holder of shard 0 from
# everyone, prints a `watch --once` frame before, during and after, heals,
# waits for the cluster to settle, and judges the run with `check
# --history`. Exits non-zero if the load saw a duplicate charge or the
# checkers found a violation. Everything runs on loopback and is stopped on
# exit.
#
#   examples/chaos.sh                 # data in ./data-chaos (removed first)
#   DATA=/tmp/x RPS=80 examples/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/controlplane
data=${DATA:-data-chaos}
rps=${RPS:-40}
rm -rf "$data" && mkdir -p "$data"

"$bin" serve --data "$data" --http 127.0.0.1:0 >"$data/serve.log" 2>&1 &
serve=$!
trap 'kill "$serve" 2>/dev/null || true; wait "$serve" 2>/dev/null || true' EXIT
until [ -s "$data/admin.json" ] && grep -q 'API' "$data/serve.log"; do sleep 0.2; done
api=$(grep -o 'http://[0-9.:]*' "$data/serve.log" | head -1)
until curl -fs "$api/readyz" >/dev/null; do sleep 0.2; done
echo "== serving at $api (admin: $data/admin.json)"

frame() {
  echo "== watch --once: $1"
  "$bin" watch --once --data "$data" --width 110 --height 36
}

"$bin" load --url "$api" --rps "$rps" --duration 30s --data "$data" >"$data/load.md" 2>&1 &
load=$!
sleep 6
frame "before the partition"

echo "== partition the holder of shard 0 from everyone, for 20 s"
"$bin" chaos partition shard-0 --for 20s --data "$data"
sleep 8
frame "during the partition (its lease expired; another controller took shard 0 with a higher token)"
"$bin" chaos status --data "$data"

echo "== heal"
"$bin" chaos heal --data "$data"

set +e
wait "$load"
load_exit=$?
set -e
sed -n '/^| achieved/p;/^## Duplicate charges/p' "$data/load.md"

# Settle: the checkers judge `eventually.*` only a liveness bound after the
# last heal and the last new request.
bound_ms=10000
echo "== settling for $((bound_ms / 1000 + 3)) s"
sleep $((bound_ms / 1000 + 3))
# A real history ends at its last line, and an idle cluster records
# little: a read marks the moment the run is judged at.
curl -fs "$api/v1/resources?limit=1" >/dev/null
sleep 1
frame "after the heal"

echo "== check --history"
set +e
"$bin" check --history "$data" --quiet --liveness-bound-ms "$bound_ms" >"$data/check.md"
check_exit=$?
set -e
head -12 "$data/check.md"
grep -E '^\| `(always|eventually)\.(one_charge_per_key|converged|shards_held)`' "$data/check.md" || true
echo "load exit $load_exit (12 = a duplicate charge), check exit $check_exit"
[ "$load_exit" -eq 0 ] && [ "$check_exit" -eq 0 ]
