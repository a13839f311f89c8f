#!/usr/bin/env bash
# The docker tier, production file: deploy/compose.prod.yaml (HAProxy, counter replicas `web`,
# database nodes `db` with SHOAL_SEED=dns:db, namespace `test` with replication-factor 2), end
# to end with the images built from this checkout. SKIPs (exit 0) without a Docker engine, Compose,
# curl or python3, or when the HAProxy image cannot be built (no debootstrap, not root, no
# network to Debian's mirror).
#
#   1. images: deploy/build-images.sh (SKIP_BUILD=1 reuses shoal:dev and shoal-counter:dev; TAG=x
#      builds and tests :x instead) and
#      deploy/haproxy/build-image.sh (its root filesystem is cached under CARGO_TARGET_DIR)
#   2. up -d --scale web=2 --scale db=3; time until the three nodes agree on a stable cluster
#      (`cluster-stable:size=3`: membership agreed and migrations finished) and until the counter
#      answers through HAProxy; both web replicas answer
#   3. KEYS records of 1 KB written with `shoal bench --load` inside a db container; from here on
#      every stable cluster must hold exactly 2 copies of every record (the `objects` of all
#      nodes add up to 2 x (KEYS + 1), the counter included)
#   4. N increments through HAProxy (one at a time, paced); at request KILL_AT, `docker kill` the
#      node that masters the counter record; count the acknowledged and failed increments and
#      the error window; the final count must lie between acked and acked + errors (a failed
#      increment may or may not have been applied)
#   5. --scale db=5 (the killed container is started again with its volume, two are new): a
#      stable cluster of 5 with no other step; the count and the copies are intact
#   6. back to 3, one node at a time (--scale db=4, stable, --scale db=3, stable) under
#      increments: graceful stops hand the partitions over; errors are counted; nothing is lost
#   7. rebuild: a node killed and started again on its volume, then a node removed with its
#      volume (`docker rm -f -v`) and replaced by an empty one; time until the cluster is stable
#      again (migrations finished) and the copies are complete
#   8. a db container disconnected from the network for 10 s, reconnected: it rejoins, nothing lost
#   9. --scale web=3: the new replica gets traffic through HAProxy
#  10. down -v, always (trap), plus the anonymous volumes of containers removed by scaling down
#
# Prints FIGURE lines: image sizes, up to stable cluster (3 and 5), error window on kill and on
# graceful stops, rebuild times with and without the volume, rejoin after a partition.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-1000}
KILL_AT=${KILL_AT:-300}
PACE_MS=${PACE_MS:-10}
LIMIT_S=${LIMIT_S:-120}
ERROR_WINDOW_LIMIT_S=${ERROR_WINDOW_LIMIT_S:-5}
KEYS=${KEYS:-20000}
project=shoal-prod-test

if ! docker info >/dev/null 2>&1; then
  echo "SKIP prod docker tests: no Docker engine answers \`docker info\`"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  echo "SKIP prod docker tests: neither \`docker compose\` nor \`docker-compose\` is installed"
  exit 0
fi
for tool in curl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP prod docker tests: $tool is not installed"
    exit 0
  fi
done

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ "${SKIP_BUILD:-0}" != "1" ] || ! docker image inspect "shoal:${TAG:-dev}" "shoal-counter:${TAG:-dev}" >/dev/null 2>&1; then
  deploy/build-images.sh
fi
rc=0
deploy/haproxy/build-image.sh || rc=$?
if [ "$rc" -eq 3 ]; then
  echo "SKIP prod docker tests: the HAProxy image cannot be built here (see above)"
  exit 0
elif [ "$rc" -ne 0 ]; then
  fail "deploy/haproxy/build-image.sh failed ($rc)"
fi
# The run uses its own tag of each image, so another docker test rebuilding :dev meanwhile
# cannot change the images under it. TAG names the images to test (as for build-images.sh).
source_tag=${TAG:-dev}
export IMAGE_TAG=prod-test
for image in shoal shoal-counter shoal-haproxy; do
  docker image inspect "$image:$source_tag" >/dev/null 2>&1 \
    || fail "image $image:$source_tag missing (run deploy/build-images.sh --with-haproxy)"
  bytes=$(docker image inspect -f '{{.Size}}' "$image:$source_tag")
  echo "FIGURE image $image:$source_tag: $(awk -v b="$bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
  docker tag "$image:$source_tag" "$image:$IMAGE_TAG"
done

export HTTP_BIND=127.0.0.1
export HTTP_PORT=${HTTP_PORT:-$(free_port)}
compose() { "${compose_cmd[@]}" -p "$project" -f deploy/compose.prod.yaml "$@"; }
log=$(mktemp "${TMPDIR:-/tmp}/shoal-prod-test.XXXXXX")
volumes=$(mktemp "${TMPDIR:-/tmp}/shoal-prod-test-volumes.XXXXXX")
# remember_volumes: note the anonymous volumes of every db container, so the cleanup can delete
# those of containers that scaling down removed (down -v only knows the containers still there).
remember_volumes() {
  local ids
  ids=$(compose ps -q db 2>/dev/null || true)
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  docker inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}{{"\n"}}{{end}}{{end}}' $ids \
    >>"$volumes" 2>/dev/null || true
}
load_pid=""
stop_file=""
load_out=""
cleanup() {
  local rc=$?
  # The background load of the scale-down step, if it is still running.
  if [ -n "$load_pid" ]; then
    kill "$load_pid" >/dev/null 2>&1 || true
    wait "$load_pid" 2>/dev/null || true
  fi
  rm -f "${stop_file:-}" "${load_out:-}"
  if [ "$rc" -ne 0 ]; then
    echo "--- compose ps (failure) ---" >&2
    compose ps >&2 2>&1 || true
    echo "--- compose logs (failure) ---" >&2
    compose logs --no-color --tail 30 >&2 2>&1 || true
    echo "--- compose output ---" >&2
    cat "$log" >&2 || true
  fi
  remember_volumes
  compose down -v --remove-orphans -t 40 >/dev/null 2>&1 || true
  local v
  while read -r v; do
    [ -z "$v" ] || docker volume rm "$v" >/dev/null 2>&1 || true
  done < <(sort -u "$volumes")
  rm -f "$log" "$volumes"
  docker rmi "shoal:$IMAGE_TAG" "shoal-counter:$IMAGE_TAG" "shoal-haproxy:$IMAGE_TAG" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
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
# running_dbs: the ids of the running db containers.
running_dbs() { compose ps -q db 2>/dev/null | xargs -r docker inspect -f '{{if .State.Running}}{{.Id}}{{end}}' | sed '/^$/d'; }
info() { docker exec "$1" /usr/local/bin/shoal info "$2"; }
# stable N: exactly N db containers run, each answers cluster-stable:size=N (membership agreed,
# migrations finished) with the same cluster key.
stable() {
  local want=$1 ids keys id out
  ids=$(running_dbs)
  [ "$(wc -l <<<"$ids")" -eq "$want" ] || return 1
  keys=""
  for id in $ids; do
    out=$(info "$id" "cluster-stable:size=$want") || return 1
    case "$out" in *ERROR*) return 1 ;; esac
    keys+="$out"$'\n'
  done
  [ "$(sort -u <<<"$keys" | sed '/^$/d' | wc -l)" -eq 1 ]
}
# copies_are EXPECTED: the `objects` of every running db add up to EXPECTED.
copies_are() {
  local want=$1 total=0 id out n
  for id in $(running_dbs); do
    out=$(info "$id" namespace/test) || return 1
    n=$(tr ';' '\n' <<<"$out" | sed -n 's/^objects=//p')
    [ -n "$n" ] || return 1
    total=$((total + n))
  done
  echo "$total"
  [ "$total" -eq "$want" ]
}
# check_copies WHEN: wait (bounded: copies on nodes that are no longer owners are dropped after
# the owners are complete) until every record has exactly two copies.
check_copies() {
  local want=$((2 * (KEYS + 1))) got
  if ! wait_until 30 copies_are "$want"; then
    got=$(copies_are "$want" || true)
    fail "$1: the nodes hold $got copies, expected $want (2 x $((KEYS + 1)) records)"
  fi
  echo "ok: $1: 2 copies of each of the $((KEYS + 1)) records"
}
# hit: one GET / through HAProxy; prints the count on the page.
hit() {
  local page
  page=$(curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/") || return 1
  grep -o 'count=[0-9]*' <<<"$page" | head -1 | cut -d= -f2
}
# scale DB: compose up with db=DB (web stays at 2), then wait for a stable cluster of DB nodes;
# prints the seconds that took, and when compose up returned.
scale() {
  local db=$1 t t_up
  t=$(now)
  compose up -d --no-recreate --scale web=2 --scale db="$db" >>"$log" 2>&1 || fail "compose up --scale db=$db failed"
  t_up=$(now)
  wait_until "$LIMIT_S" stable "$db" || fail "no stable cluster of $db within ${LIMIT_S}s"
  remember_volumes
  echo "$(elapsed "$t" "$(now)") s (compose up returned at $(elapsed "$t" "$t_up") s)"
}

echo "==> compose up --scale web=2 --scale db=3 (project $project, HAProxy on 127.0.0.1:$HTTP_PORT)"
t0=$(now)
compose up -d --scale web=2 --scale db=3 >"$log" 2>&1 || fail "compose up failed"
wait_until "$LIMIT_S" stable 3 || fail "no stable cluster of 3 within ${LIMIT_S}s of up"
t_stable=$(now)
remember_volumes
wait_until "$LIMIT_S" hit || fail "the counter does not answer through HAProxy within ${LIMIT_S}s"
t_web=$(now)
echo "FIGURE up to stable cluster of 3: $(elapsed "$t0" "$t_stable") s (compose up returns once the db healthchecks pass)"
echo "FIGURE up to counter answering through HAProxy: $(elapsed "$t0" "$t_web") s"

# Both replicas answer: HAProxy found them through Docker's DNS.
webs=""
for _ in $(seq 10); do
  page=$(curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/") || fail "GET / failed"
  webs+="$(grep -o 'web=[^ ]*' <<<"$page" | head -1)"$'\n'
done
n_webs=$(sort -u <<<"$webs" | sed '/^$/d' | wc -l)
[ "$n_webs" -eq 2 ] || fail "10 requests through HAProxy reached $n_webs web replicas, expected 2"
echo "ok: HAProxy balances over 2 web replicas"

echo "==> $KEYS records of 1 KB (shoal bench --load, inside a db container)"
some_db=$(running_dbs | head -1)
t=$(now)
docker exec "$some_db" /usr/local/bin/shoal bench --load --duration 0 --keys "$KEYS" --value-size 1000 --concurrency 32 \
  >>"$log" 2>&1 || fail "shoal bench --load failed"
echo "FIGURE load of $KEYS records of 1 KB (RF 2, 3 nodes, from inside a db container): $(elapsed "$t" "$(now)") s"
check_copies "db=3 after the load"

# The node that masters the counter record is named on the page; find its container.
owner=$(grep -o 'db=[^ ]*' <<<"$page" | head -1 | cut -d= -f2)
victim=""
for id in $(running_dbs); do
  if [ "$(info "$id" node)" = "$owner" ]; then victim=$id; fi
done
[ -n "$victim" ] || fail "no db container is node $owner (the counter's master)"
victim_name=$(docker inspect -f '{{.Name}}' "$victim")

base=$(hit) || fail "GET / failed"
echo "==> $N increments through HAProxy; docker kill ${victim_name#/} (master of the counter) at request $KILL_AT"
result=$(python3 tests/docker/prod-load.py "$HTTP_PORT" "$N" "$KILL_AT" "$victim" "$PACE_MS") || fail "load failed"
echo "load: $result"
field() { tr ' ' '\n' <<<"$result" | sed -n "s/^$1=//p"; }
acked=$(field acked)
errors=$(field errors)
window=$(field window_s)
[ "$(field rising)" = yes ] || fail "acknowledged counts did not always rise: $result"
final=$(hit) || fail "GET / after the load failed"
applied=$((final - base - 1))
echo "FIGURE error window on docker kill of the counter's master: $window s ($errors of $N increments failed, longest request $(field longest_s) s)"
[ "$applied" -ge "$acked" ] || fail "count rose by $applied but $acked increments were acknowledged: acknowledged writes lost"
[ "$applied" -le $((acked + errors)) ] || fail "count rose by $applied, more than $acked acked + $errors failed increments"
awk -v w="$window" -v l="$ERROR_WINDOW_LIMIT_S" 'BEGIN { exit !(w <= l) }' \
  || fail "errors lasted $window s after the kill, over ${ERROR_WINDOW_LIMIT_S}s"
echo "ok: count rose by $applied for $acked acknowledged and $errors failed increments"
wait_until "$LIMIT_S" stable 2 || fail "the two remaining nodes did not form a stable cluster"

echo "==> --scale db=5 (the killed container starts again on its volume, two new nodes)"
s5=$(scale 5)
echo "FIGURE scale 2 -> 5 (one restarted after kill -9, two new) to stable cluster of 5: $s5"
c=$(hit) || fail "GET / failed at db=5"
[ "$c" -eq $((final + 1)) ] || fail "at db=5 the count is $c, expected $((final + 1))"
echo "ok: cluster of 5 is stable, count intact ($c)"
check_copies "db=5"

echo "==> back to 3, one node at a time (graceful stops), under increments"
stop_file=$(mktemp -u "${TMPDIR:-/tmp}/shoal-prod-test-stop.XXXXXX")
load_out=$(mktemp "${TMPDIR:-/tmp}/shoal-prod-test-load.XXXXXX")
base=$(hit) || fail "GET / failed"
python3 tests/docker/prod-load.py "$HTTP_PORT" 100000 -1 "" "$PACE_MS" "$stop_file" >"$load_out" &
load_pid=$!
s4=$(scale 4)
s3=$(scale 3)
touch "$stop_file"
wait "$load_pid" || { load_pid=""; fail "load failed"; }
load_pid=""
result=$(cat "$load_out")
rm -f "$stop_file" "$load_out"
echo "load: $result"
acked=$(field acked)
errors=$(field errors)
echo "FIGURE scale 5 -> 4 -> 3 (graceful stops) to stable: $s4, then $s3"
echo "FIGURE error window on graceful stops (5 -> 4 -> 3): $(field window_s) s ($errors of $(field sent) increments failed, longest request $(field longest_s) s)"
[ "$(field rising)" = yes ] || fail "acknowledged counts did not always rise: $result"
c2=$(hit) || fail "GET / failed at db=3"
applied=$((c2 - base - 1))
[ "$applied" -ge "$acked" ] || fail "count rose by $applied but $acked increments were acknowledged: acknowledged writes lost"
[ "$applied" -le $((acked + errors)) ] || fail "count rose by $applied, more than $acked acked + $errors failed increments"
echo "ok: cluster of 3 is stable, count intact ($c2: rose by $applied for $acked acknowledged and $errors failed increments)"
check_copies "db=3 after the graceful stops"

echo "==> rebuild: a node killed and started again on its volume"
node_c=$(running_dbs | tail -1)
docker kill "$node_c" >/dev/null
wait_until "$LIMIT_S" stable 2 || fail "no stable cluster of 2 after the kill"
t=$(now)
docker start "$node_c" >/dev/null
wait_until "$LIMIT_S" stable 3 || fail "no stable cluster of 3 after restarting the killed node"
echo "FIGURE node killed and restarted on its volume (cold start + catch-up) to stable cluster of 3: $(elapsed "$t" "$(now)") s ($KEYS records of 1 KB)"
check_copies "db=3 after the restart on the volume"

echo "==> rebuild: a node removed with its volume, replaced by an empty one"
remember_volumes
docker rm -f -v "$node_c" >/dev/null
wait_until "$LIMIT_S" stable 2 || fail "no stable cluster of 2 after removing a node"
t=$(now)
compose up -d --no-recreate --scale web=2 --scale db=3 >>"$log" 2>&1 || fail "compose up --scale db=3 failed"
wait_until "$LIMIT_S" stable 3 || fail "no stable cluster of 3 after adding an empty node"
remember_volumes
echo "FIGURE node that lost its volume replaced by an empty one to stable cluster of 3: $(elapsed "$t" "$(now)") s ($KEYS records of 1 KB, about $((2 * KEYS / 3 / 1000)) MB migrated to it)"
check_copies "db=3 after the rebuild"
c3=$(hit) || fail "GET / failed after the rebuild"
[ "$c3" -eq $((c2 + 1)) ] || fail "after the rebuild the count is $c3, expected $((c2 + 1))"
echo "ok: count intact after the rebuild ($c3)"

echo "==> network partition: a db container disconnected from the backend network for 10 s"
part_c=$(running_dbs | head -1)
part_name=$(docker inspect -f '{{.Name}}' "$part_c")
docker network disconnect "${project}_backend" "$part_c" >>"$log" 2>&1 || fail "docker network disconnect failed"
sleep 10
t=$(now)
# Reconnected with the service's DNS alias, which a disconnect drops.
docker network connect --alias db "${project}_backend" "$part_c" >>"$log" 2>&1 || fail "docker network connect failed"
wait_until "$LIMIT_S" stable 3 || fail "${part_name#/} did not rejoin within ${LIMIT_S}s of the reconnect"
echo "FIGURE node disconnected for 10 s, reconnected to stable cluster of 3: $(elapsed "$t" "$(now)") s"
check_copies "db=3 after the partition"
c4=$(hit) || fail "GET / failed after the partition"
[ "$c4" -eq $((c3 + 1)) ] || fail "after the partition the count is $c4, expected $((c3 + 1))"
echo "ok: count intact after the partition ($c4)"

echo "==> --scale web=3: HAProxy finds the new replica through Docker's DNS"
compose up -d --no-recreate --scale web=3 --scale db=3 >>"$log" 2>&1 || fail "compose up --scale web=3 failed"
# web_count: distinct replicas that answered 12 requests.
web_count() {
  local seen="" page
  for _ in $(seq 12); do
    page=$(curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/") || return 1
    seen+="$(grep -o 'web=[^ ]*' <<<"$page" | head -1)"$'\n'
  done
  [ "$(sort -u <<<"$seen" | sed '/^$/d' | wc -l)" -eq 3 ]
}
t=$(now)
wait_until 60 web_count || fail "HAProxy did not balance over 3 web replicas within 60 s"
echo "ok: 3 web replicas answer through HAProxy ($(elapsed "$t" "$(now)") s after compose up returned)"

echo "prod docker tests passed"
