#!/usr/bin/env bash
# The browser tier: the dashboard (`GET /` on the HTTP port) in a real headless Chromium,
# against a 3-node cluster of real shoald processes on loopback. Runs only when Chromium is
# installed (Debian: apt-get install -y chromium); otherwise prints a SKIP line and exits 0.
#
#   1. builds shoald (`cargo build -p shoal-server --bin shoald`, honouring CARGO_TARGET_DIR)
#      unless SHOALD_BIN names a binary to test
#   2. starts 3 nodes with distinct ports, nodes 2 and 3 seeded with node 1's heartbeat port;
#      waits until every node's /api/cluster reports a stable cluster of 3 with one key
#   3. for each node: chromium --dump-dom of its dashboard; the DOM must say data-state="ok"
#      (everything rendered), list 3 nodes with this node marked, draw the namespace, and keep
#      an empty errors element (no script error, no unhandled rejection)
#   4. a screenshot of node 1's dashboard, saved under the target directory (path printed)
#   5. node 3 is killed while its dashboard is open: the page must show the disconnected banner
#   6. every node is killed on every exit path (trap)
#
# Prints a FIGURE line with the time the browser checks took.
set -euo pipefail
cd "$(dirname "$0")/../.."

chromium_bin=""
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    chromium_bin=$candidate
    break
  fi
done
if [ -z "$chromium_bin" ]; then
  echo "SKIP: chromium not installed (Debian: apt-get install -y chromium)"
  exit 0
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

target_dir=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${SHOALD_BIN:-}" ]; then
  shoald=$SHOALD_BIN
else
  cargo build -q -p shoal-server --bin shoald
  shoald=$target_dir/debug/shoald
fi
[ -x "$shoald" ] || fail "no shoald binary at $shoald"

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-browser-test.XXXXXX")
pids=()
chrome_pid=""
cleanup() {
  local rc=$?
  # TERM, not KILL: `timeout` passes it on to the browser it started.
  [ -z "$chrome_pid" ] || kill "$chrome_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    # Braces: bash reports a job killed by a signal on its own stderr, not the command's.
    { wait "$pid"; } 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    # Headless Chromium complains about the missing D-Bus on every run; leave that out.
    for log in "$work"/node*.log "$work"/chromium.log; do
      [ -s "$log" ] || continue
      echo "--- $(basename "$log") (last 20 lines, D-Bus noise left out) ---" >&2
      { grep -v 'dbus' "$log" || true; } | tail -n 20 >&2
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
# A timeout or ^C still cleans up: the signal becomes an exit, and the exit runs cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT

# Twelve distinct free ports (4 per node), held open together so none is handed out twice.
read -r -a ports <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(12)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' 2>/dev/null || true)"
if [ "${#ports[@]}" -ne 12 ]; then
  base=$((20000 + RANDOM % 20000))
  ports=()
  for i in $(seq 0 11); do ports+=($((base + i))); done
fi
service=("${ports[@]:0:3}")
fabric=("${ports[@]:3:3}")
heartbeat=("${ports[@]:6:3}")
http=("${ports[@]:9:3}")

for i in 0 1 2; do
  args=(--address 127.0.0.1 --service-port "${service[$i]}" --fabric-port "${fabric[$i]}"
    --heartbeat-port "${heartbeat[$i]}" --http-port "${http[$i]}"
    --data-dir "$work/data$((i + 1))" --log-level warn)
  if [ "$i" -gt 0 ]; then
    args+=(--seed "127.0.0.1:${heartbeat[0]}")
  fi
  "$shoald" "${args[@]}" >"$work/node$((i + 1)).log" 2>&1 &
  pids+=($!)
done

# http_get PORT PATH: the body of an HTTP/1.0 GET on 127.0.0.1 (bash's /dev/tcp, no curl needed).
http_get() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    timeout 5 cat <&3
  ) 2>/dev/null | sed '1,/^\r$/d'
}
# field JSON NAME: the first value of "NAME": in compact JSON (numbers, booleans, strings).
# Empty when absent.
field() { { grep -o "\"$2\":[^,}]*" <<<"$1" || true; } | head -1 | cut -d: -f2- | tr -d '"'; }

echo "==> 3 nodes on 127.0.0.1 (HTTP ports ${http[*]}); waiting for a stable cluster of 3"
t0=$(now)
deadline=$(($(date +%s) + 30))
while :; do
  ok=1
  keys=()
  for i in 0 1 2; do
    json=$(http_get "${http[$i]}" /api/cluster || true)
    keys+=("$(field "$json" key)")
    if [ "$(field "$json" size)" != 3 ] || [ "$(field "$json" stable)" != true ]; then
      ok=0
    fi
  done
  if [ "$ok" = 1 ] && [ "${keys[0]}" != 0 ] && [ "${keys[0]}" = "${keys[1]}" ] \
    && [ "${keys[0]}" = "${keys[2]}" ]; then
    break
  fi
  [ "$(date +%s)" -lt "$deadline" ] || fail "no stable cluster of 3 within 30 s (keys: ${keys[*]})"
  sleep 0.2
done
echo "ok: cluster key ${keys[0]}, size 3, stable, after $(elapsed "$t0" "$(now)") s"

# chrome OUT ARGS...: headless Chromium with ARGS, stdout to OUT, stderr to chromium.log. Runs in
# the background and is waited for, so a TERM or ^C is handled at once (bash runs traps only
# between foreground commands) and cleanup stops the browser too.
chrome_cmd=(timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --no-first-run
  --user-data-dir="$work/chromium-profile")
chrome() {
  local out=$1
  shift
  "${chrome_cmd[@]}" "$@" >"$out" 2>>"$work/chromium.log" &
  chrome_pid=$!
  local rc=0
  wait "$chrome_pid" || rc=$?
  chrome_pid=""
  return "$rc"
}

t_browser=$(now)
for i in 0 1 2; do
  url="http://127.0.0.1:${http[$i]}/"
  node=$(field "$(http_get "${http[$i]}" /api/cluster)" node)
  chrome "$work/dom$((i + 1)).html" --virtual-time-budget=5000 --dump-dom "$url" \
    || fail "chromium --dump-dom $url failed"
  dom=$(cat "$work/dom$((i + 1)).html")
  grep -q '<body[^>]*data-state="ok"' <<<"$dom" || fail "node $((i + 1)): data-state is not ok: $dom"
  rows=$(grep -o '<tr data-node="[0-9A-F]*"' <<<"$dom" | wc -l)
  [ "$rows" -eq 3 ] || fail "node $((i + 1)): $rows node rows, expected 3"
  grep -q "<tr data-node=\"$node\" class=\"self\">" <<<"$dom" \
    || fail "node $((i + 1)): node $node is not marked as this node"
  grep -q 'id="ns-test"' <<<"$dom" || fail "node $((i + 1)): no section for namespace test"
  grep -q '<pre id="errors"></pre>' <<<"$dom" \
    || fail "node $((i + 1)): the page reported errors:
$(sed -n '/<pre id="errors">/,/<\/pre>/p' <<<"$dom")"
  echo "ok: node $((i + 1)) ($node): rendered, 3 nodes listed, this node marked, no errors"
done

shot_dir=$target_dir/browser
mkdir -p "$shot_dir"
shot=$shot_dir/dashboard.png
rm -f "$shot"
chrome /dev/null --virtual-time-budget=5000 --window-size=1280,1000 --screenshot="$shot" \
  "http://127.0.0.1:${http[0]}/" || fail "chromium --screenshot failed"
[ -s "$shot" ] || fail "no screenshot written to $shot"
echo "ok: screenshot of node 1's dashboard: $shot"

# Node 3 dies while its page is open. Virtual time runs the page's 1 s polls as fast as the
# fetches answer, so a long budget keeps the page polling while the node is killed, once the
# browser holds a connection to it (the page has loaded).
port3=${http[2]}
"${chrome_cmd[@]}" --virtual-time-budget=600000 --dump-dom "http://127.0.0.1:$port3/" \
  >"$work/disconnected.html" 2>>"$work/chromium.log" &
chrome_pid=$!
hex_port=$(printf '%04X' "$port3")
deadline=$(($(date +%s) + 30))
until awk -v p=":$hex_port\$" '$2 ~ p && $4 == "01" { f = 1 } END { exit !f }' /proc/net/tcp; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "chromium never connected to node 3"
  sleep 0.05
done
sleep 1
kill -9 "${pids[2]}"
{ wait "${pids[2]}"; } 2>/dev/null || true
wait "$chrome_pid" || fail "chromium --dump-dom of node 3 failed"
chrome_pid=""
dom=$(cat "$work/disconnected.html")
grep -q '<body[^>]*data-state="ok"' <<<"$dom" || fail "node 3's page never rendered: $dom"
grep -q '<body[^>]*data-connection="down"' <<<"$dom" || fail "node 3's page did not notice: $dom"
grep -q '<div id="banner">disconnected' <<<"$dom" || fail "no visible disconnected banner: $dom"
failures=$(grep -o 'data-failures="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || true)
[ "${failures:-0}" -ge 3 ] || fail "the page stopped retrying after ${failures:-0} failed polls"
echo "ok: node 3 killed: its page shows the disconnected banner and kept retrying ($failures failed polls)"

echo "FIGURE browser checks: $(elapsed "$t_browser" "$(now)") s"
echo "browser tests passed"
