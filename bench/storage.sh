#!/usr/bin/env bash
# Flash storage figures for a `storage-engine device` namespace, on the disk holding $DIR:
#   raw sequential write bandwidth (dd, O_DIRECT, fsync) against shoal's sustained insert rate
#   with 1 KiB records; read latency with the page cache dropped; fast restart after SIGTERM;
#   cold start after kill -9; resident memory per record (index in DRAM).
# Knobs: KEYS (1000000), VALUE_SIZE (1024), DIR (/var/tmp/shoal-storage-bench), NO_BUILD=1,
# CONCURRENCY (32). Only 127.0.0.1 is used; everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-1024}
DIR=${DIR:-/var/tmp/shoal-storage-bench}
CONCURRENCY=${CONCURRENCY:-32}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -q --bin shoald --bin shoal
SHOALD=$TARGET/release/shoald
SHOAL=$TARGET/release/shoal
rm -rf "$DIR" && mkdir -p "$DIR"
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
size_bytes=$(( KEYS * (VALUE_SIZE + 256) * 2 ))
size_g=$(( size_bytes / 1073741824 + 1 ))
PORT=$(free_port)
NS="bench,storage-engine=device,device=$DIR/bench.dat,filesize=${size_g}G,memory-size=4G"
# Starts shoald and waits until it listens; sets $pid and $startup_ms (no subshell, so $pid sticks).
start_node() {
  local t0; t0=$(now_ms)
  taskset -c 0 "$SHOALD" --address 127.0.0.1 --service-port "$PORT" --http-port 0 --heartbeat-port 0 \
    --data-dir "$DIR" --namespace "$NS" --log-level warn >>"$DIR/shoald.log" 2>&1 &
  pid=$!
  until (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do sleep 0.01; done
  startup_ms=$(( $(now_ms) - t0 ))
}
info() { "$SHOAL" --port "$PORT" info "$1"; }

echo "== raw sequential write bandwidth (dd 2 GiB, O_DIRECT, fsync) on $(df --output=source "$DIR" | tail -1)"
raw=$(dd if=/dev/zero of="$DIR/raw.dat" bs=1M count=2048 oflag=direct conv=fsync 2>&1 | tail -1)
rm -f "$DIR/raw.dat"
echo "$raw"

start_node
echo "== first start on a new ${size_g} GiB file: $startup_ms ms"
rss0=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
echo "== load: $KEYS records of $VALUE_SIZE bytes, $CONCURRENCY connections"
taskset -c 1 "$SHOAL" --port "$PORT" bench --namespace bench --keys "$KEYS" --value-size "$VALUE_SIZE" \
  --concurrency "$CONCURRENCY" --load --duration 0 --server-pid "$pid" 2>&1 | grep -E "load:|CPU per op|insert"
rss1=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
echo "resident memory added per record (index + metadata in DRAM): $(( (rss1 - rss0) * 1024 / KEYS )) bytes"
info "namespace/bench" | tr ';' '\n' | grep -E "^(device_used_bytes|device_total_bytes|objects|defrag)" | tr '\n' ' '; echo

echo "== reads with the page cache dropped (10 s, 100% reads)"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(could not drop the page cache: not root?)"
taskset -c 1 "$SHOAL" --port "$PORT" bench --namespace bench --keys "$KEYS" --value-size "$VALUE_SIZE" \
  --concurrency "$CONCURRENCY" --reads 100 --duration 10 --server-pid "$pid" 2>&1 | grep -E "^\s+(read|all)|CPU per op"

echo "== clean stop (SIGTERM) then fast restart"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
start_node
echo "restart to listening: $startup_ms ms ($(info "namespace/bench" | tr ';' '\n' | grep storage_recovery))"

echo "== kill -9 then cold start"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
start_node
echo "restart to listening: $startup_ms ms = $(( KEYS * 1000 / (startup_ms + 1) )) records/s ($(info "namespace/bench" | tr ';' '\n' | grep storage_recovery))"
