#!/usr/bin/env bash
# The docker tier: the development compose file, end to end, with the images built from this
# checkout. Runs only when a Docker engine answers (`docker info`) and Compose is installed
# (`docker compose` or `docker-compose`); otherwise prints a SKIP line and exits 0.
#
#   1. deploy/build-images.sh (SKIP_BUILD=1 reuses the shoal:dev and shoal-counter:dev images)
#   2. compose -p shoal-test up -d; time until the db is ready and until the counter answers
#   3. N requests: the count rises by exactly one per request; the page names the db node
#   4. compose restart db (SIGTERM: clean shutdown, index snapshot); the count continues from
#      the volume
#   5. compose down -v, always (trap), so no container, network or volume is left behind
#
# Prints FIGURE lines: image sizes, up-to-ready, restart-to-ready.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-20}
READY_LIMIT_S=${READY_LIMIT_S:-120}
project=shoal-test

if ! docker info >/dev/null 2>&1; then
  echo "SKIP docker tests: no Docker engine answers \`docker info\`"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  echo "SKIP docker tests: neither \`docker compose\` nor \`docker-compose\` is installed"
  exit 0
fi

if ! command -v curl >/dev/null 2>&1; then
  echo "SKIP docker tests: curl is not installed"
  exit 0
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  deploy/build-images.sh
fi
for image in shoal:dev shoal-counter:dev; do
  docker image inspect "$image" >/dev/null 2>&1 || fail "image $image missing (run deploy/build-images.sh)"
  bytes=$(docker image inspect -f '{{.Size}}' "$image")
  echo "FIGURE image $image: $(awk -v b="$bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
  [ "$bytes" -le 25000000 ] || fail "image $image is $bytes bytes, over the 25 MB goal"
  user=$(docker image inspect -f '{{.Config.User}}' "$image")
  case "$user" in "" | 0 | 0:* | root | root:*) fail "image $image runs as root" ;; esac
done

export COUNTER_PORT=${COUNTER_PORT:-$(free_port)}
export SHOAL_PORT=${SHOAL_PORT:-$(free_port)}
compose() { "${compose_cmd[@]}" -p "$project" -f deploy/compose.yaml "$@"; }
log=$(mktemp "${TMPDIR:-/tmp}/shoal-docker-test.XXXXXX")
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "--- compose logs (failure) ---" >&2
    compose logs --no-color --tail 40 >&2 2>&1 || true
    echo "--- compose up output ---" >&2
    cat "$log" >&2 || true
  fi
  compose down -v --remove-orphans -t 30 >/dev/null 2>&1 || true
  rm -f "$log"
  exit "$rc"
}
trap cleanup EXIT
# A timeout or ^C still cleans up: the signal becomes an exit, and the exit runs cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT
# Leftovers of an interrupted earlier run would hold the ports and the old count.
compose down -v --remove-orphans >/dev/null 2>&1 || true

# wait_until LIMIT_S CMD...: run CMD every 0.2 s until it succeeds; false after LIMIT_S.
wait_until() {
  local limit=$1
  shift
  local start
  start=$(now)
  until "$@" >/dev/null 2>&1; do
    if awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      return 1
    fi
    sleep 0.2
  done
}
db_ready() {
  local cid
  cid=$(compose ps -q db 2>/dev/null)
  [ -n "$cid" ] && docker exec "$cid" /usr/local/bin/shoal-probe
}
web_ready() { curl -fsS --max-time 3 "http://127.0.0.1:$COUNTER_PORT/health"; }
# hit: one GET /; prints the count on the page.
hit() {
  local page
  page=$(curl -fsS --max-time 5 "http://127.0.0.1:$COUNTER_PORT/") || return 1
  grep -o 'count=[0-9]*' <<<"$page" | head -1 | cut -d= -f2
}

echo "==> compose up (project $project, counter on 127.0.0.1:$COUNTER_PORT, db on 127.0.0.1:$SHOAL_PORT)"
t0=$(now)
compose up -d >"$log" 2>&1 &
up_pid=$!
wait_until "$READY_LIMIT_S" db_ready || fail "db not ready within ${READY_LIMIT_S}s"
t_db=$(now)
wait "$up_pid" || fail "compose up failed"
wait_until "$READY_LIMIT_S" web_ready || fail "counter not answering within ${READY_LIMIT_S}s"
t_web=$(now)
echo "FIGURE up to db ready: $(elapsed "$t0" "$t_db") s (first start: a 1 GB data file is created)"
echo "FIGURE up to counter answering: $(elapsed "$t0" "$t_web") s"

echo "==> $N requests"
db_cid=$(compose ps -q db)
node=$(docker exec "$db_cid" /usr/local/bin/shoal info node)
page=$(curl -fsS --max-time 5 "http://127.0.0.1:$COUNTER_PORT/") || fail "GET / failed"
grep -q "db=$node" <<<"$page" || fail "page does not name db node $node: $page"
first=$(grep -o 'count=[0-9]*' <<<"$page" | cut -d= -f2)
[ -n "$first" ] || fail "no count on the page: $page"
prev=$first
for _ in $(seq "$N"); do
  c=$(hit) || fail "GET / failed"
  [ "$c" -eq $((prev + 1)) ] || fail "count went from $prev to $c"
  prev=$c
done
[ "$prev" -eq $((first + N)) ] || fail "after $N requests the count is $prev, expected $((first + N))"
echo "ok: count $first -> $prev after $N requests, served by db node $node"

echo "==> compose restart db"
t1=$(now)
compose restart db >>"$log" 2>&1 || fail "compose restart db failed"
wait_until "$READY_LIMIT_S" db_ready || fail "db not ready within ${READY_LIMIT_S}s of the restart"
t_db2=$(now)
echo "FIGURE restart db to ready: $(elapsed "$t1" "$t_db2") s (clean shutdown + fast restart from the index snapshot)"
# Capture first: `cmd | grep -q` lets grep exit at the first match, the writer then dies of
# SIGPIPE, and pipefail turns a found line into a failure (seen once in the gate).
db_log=$(compose logs --no-color db 2>&1 || true)
grep -q "index snapshot written" <<<"$db_log" \
  || fail "no clean shutdown (index snapshot) in the db log after SIGTERM"
# The counter's client reconnects on its own; give it a bounded time to do so.
wait_until 30 hit || fail "counter did not recover after the db restart"
c=$(hit) || fail "GET / failed after the restart"
# wait_until's successful hit counted one, so the next is prev + 2; anything else means lost or
# doubled increments.
[ "$c" -eq $((prev + 2)) ] || fail "after the restart the count is $c, expected $((prev + 2))"
echo "ok: count continued from the volume: $prev -> $c"

echo "docker tests passed"
