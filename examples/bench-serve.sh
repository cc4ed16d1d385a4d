#!/usr/bin/env bash
# The serve benchmark: one process per node (examples/peers.toml), `load`
# at a fixed rate, and one role process killed with SIGKILL and restarted
# from its data directory in the middle of the run. Prints load's report
# (requests/s, latency percentiles, errors by status, duplicate charges
# counted exactly from billing's history) and then judges the run's
# history with `check --history`. Not a test: figures, for the README.
#
#   examples/bench-serve.sh                     # 100 rps, 30 s, kill the store at 10 s
#   RPS=200 DURATION=60s VICTIM=api-0 examples/bench-serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rps=${RPS:-100}
duration=${DURATION:-30s}
victim=${VICTIM:-store}
kill_at=${KILL_AT:-10}
down_for=${DOWN_FOR:-1}
cargo build --release --quiet
bin=target/release/controlplane
data=${DATA:-data-bench}
rm -rf "$data" && mkdir -p "$data"
declare -A pids
start() {
  "$bin" serve --role "$1" --peers examples/peers.toml --data "$data" >>"$data/$1.log" 2>&1 &
  pids[$1]=$!
}
trap 'kill -9 "${pids[@]}" 2>/dev/null || true' EXIT
for role in store billing api-0 api-1 controller-0 controller-1 controller-2 worker-0 worker-1 worker-2 http-0; do
  start "$role"
done
url=http://127.0.0.1:8080
until curl -fs "$url/readyz" >/dev/null; do sleep 0.2; done

"$bin" load --url "$url" --rps "$rps" --duration "$duration" --data "$data" >"$data/load.md" &
load=$!
sleep "$kill_at"
echo "t=${kill_at}s: kill -9 $victim; restarted ${down_for}s later" >&2
{ kill -9 "${pids[$victim]}" && wait "${pids[$victim]}"; } 2>/dev/null || true
sleep "$down_for"
start "$victim"
status=0
wait "$load" || status=$?
cat "$data/load.md"
echo
echo "load exit code: $status"
kill -9 "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
"$bin" check --history "$data" | sed -n '1,8p'
exit "$status"
