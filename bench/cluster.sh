#!/usr/bin/env bash
# Cluster figures, measured with release builds of shoald and `shoal bench` on this machine:
#   - time from the last node's start to `cluster-stable` for 3 and 5 empty nodes;
#   - write latency with replication-factor 1 against 2 (3 nodes each, same load);
#   - migration: a fourth node joins 3 nodes holding KEYS records of VALUE bytes (RF 2):
#     time to stable, records and MB/s received by the new node;
#   - time from `kill -9` of a node to the survivors' new stable partition map.
# Every node, the load generator and the build share the machine's cores: read the figures as
# this machine's, not as a capacity claim. Prints FIGURE lines.
#
#   bench/cluster.sh            # KEYS=100000 VALUE=1024 DURATION=15 by default
#   MIGRATE_MAX_MBPS=20 bench/cluster.sh   # every node's --migrate-max-mbps (default 0: unlimited)
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS="${KEYS:-100000}"
VALUE="${VALUE:-1024}"
DURATION="${DURATION:-15}"
MIGRATE_MAX_MBPS="${MIGRATE_MAX_MBPS:-0}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
WORK="$(mktemp -d /tmp/shoal-cluster-bench.XXXXXX)"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --bin shoald --bin shoal >/dev/null 2>&1 || cargo build --release --bin shoald --bin shoal
SHOALD="$TARGET/release/shoald"
SHOAL="$TARGET/release/shoal"

now_ms() { date +%s%3N; }

# start_node I RF [SEED_HB_PORT]: node I listens on 3I00 (service), 3I01 (fabric), 3I02 (heartbeat),
# 9I45 (HTTP).
start_node() {
  local i="$1" rf="$2" seed="${3:-}"
  local args=(--address 127.0.0.1 --service-port "3${i}00" --fabric-port "3${i}01"
    --heartbeat-port "3${i}02" --http-port "9${i}45" --data-dir "$WORK/n$i" --log-level warn
    --namespace "test,replication-factor=$rf,memory-size=4G" --migrate-max-mbps "$MIGRATE_MAX_MBPS")
  [ -n "$seed" ] && args+=(--seed "127.0.0.1:$seed")
  "$SHOALD" "${args[@]}" >"$WORK/n$i.log" 2>&1 &
  PIDS[$i]=$!
}

info() { "$SHOAL" info --port "$1" "$2" 2>/dev/null | tail -n 1 | sed 's/^[^\t]*\t//'; }

# wait_stable SIZE PORT...: until every port answers cluster-stable:size=SIZE with one key.
wait_stable() {
  local size="$1"; shift
  for _ in $(seq 1 600); do
    local first="" ok=1
    for p in "$@"; do
      local a
      a="$(info "$p" "cluster-stable:size=$size" || true)"
      case "$a" in ''|ERROR*) ok=0; break ;; esac
      [ -z "$first" ] && first="$a"
      [ "$a" != "$first" ] && { ok=0; break; }
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  echo "cluster of $size not stable" >&2
  return 1
}

stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=()
  rm -rf "$WORK"/n*
  sleep 0.5
}

ns_stat() { info "$1" "namespace/test" | tr ';' '\n' | sed -n "s/^$2=//p"; }

# 1. Formation time.
for n in 3 5; do
  start_node 1 2
  for i in $(seq 2 "$n"); do start_node "$i" 2 3102; done
  t0="$(now_ms)"
  ports=(); for i in $(seq 1 "$n"); do ports+=("3${i}00"); done
  wait_stable "$n" "${ports[@]}"
  echo "FIGURE $n empty nodes stable $(( $(now_ms) - t0 )) ms after the last start"
  stop_all
done

# 2. Write latency, RF 1 against RF 2 (3 nodes; 50% reads / 50% updates after a load).
for rf in 1 2; do
  start_node 1 "$rf"; start_node 2 "$rf" 3102; start_node 3 "$rf" 3102
  wait_stable 3 3100 3200 3300
  out="$("$SHOAL" bench --port 3100 --keys "$KEYS" --value-size "$VALUE" --load --reads 50 \
    --duration "$DURATION" --concurrency 16 2>&1 | tail -n 30)"
  echo "== RF $rf, 3 nodes"
  echo "$out"
  if [ "$rf" = 2 ]; then
    # 3. Migration: a fourth node joins the loaded cluster.
    t0="$(now_ms)"
    start_node 4 2 3102
    wait_stable 4 3100 3200 3300 3400
    ms=$(( $(now_ms) - t0 ))
    recs="$(ns_stat 3400 migrate_records_received)"
    recs="${recs:-0}"
    mb=$(( recs * (VALUE + 60) / 1000000 ))
    echo "FIGURE a 4th node joined $KEYS x ${VALUE} B records (RF 2): stable after $ms ms; it received $recs records (~$mb MB), ~$(( mb * 1000 / (ms > 0 ? ms : 1) )) MB/s"
    # 4. Kill -9 a node: time until the survivors agree on a new stable map.
    kill -9 "${PIDS[4]}"; unset 'PIDS[4]'
    t0="$(now_ms)"
    wait_stable 3 3100 3200 3300
    echo "FIGURE kill -9 of one node to a stable map of the 3 survivors (copies rebuilt): $(( $(now_ms) - t0 )) ms"
  fi
  stop_all
done
