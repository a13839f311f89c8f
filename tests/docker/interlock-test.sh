#!/usr/bin/env bash
# The docker tier for `shoal interlock` (Docker-events discovery): nodes started with no seed and
# no DNS name in common are joined into one cluster by the interlock alone. Runs only when a
# Docker engine answers (`docker info`); otherwise prints a SKIP line and exits 0.
#
#   1. deploy/build-images.sh (SKIP_BUILD=1 reuses shoal:dev; TAG names another tag)
#   2. a private internal network and 3 shoal:dev containers labelled shoal.cluster=<unique>,
#      no SHOAL_SEED: each forms its own one-node cluster (checked, so the rest means something)
#   3. `shoal interlock` in a container of the same image (--entrypoint /usr/local/bin/shoal), the
#      Docker socket mounted; it keeps the image's non-root user 10001 and gets the socket's group
#      with --group-add (no --user 0 needed): all 3 nodes reach cluster-stable:size=3, and each
#      shows the others' heartbeat addresses as tipped (get-config:context=network,
#      heartbeat.mesh-seed-address-port)
#   4. docker stop of one node: the 2 left converge on size 2, and the interlock's tip-clear took
#      effect: neither lists the stopped node's address any more
#   5. a 4th container started: size 3 again, and the old nodes list its address
#   6. containers (with their volumes), the network and the test's image tag removed, always (trap);
#      the interlock's and the nodes' logs are printed first on failure, or always with VERBOSE=1
#
# Prints FIGURE lines: seconds from interlock start to a stable cluster of 3, from docker stop to
# the stopped node's address cleared and to a stable cluster of 2, from docker run of the 4th
# node to a stable cluster of 3.
set -euo pipefail
cd "$(dirname "$0")/../.."

LIMIT_S=${LIMIT_S:-60}
SOCKET=${SOCKET:-/var/run/docker.sock}
# Unique per run: the cluster label, the network and the containers' names.
run="shoal-il-$$-$RANDOM"

if ! docker info >/dev/null 2>&1; then
  echo "SKIP interlock docker tests: no Docker engine answers \`docker info\`"
  exit 0
fi
if [ ! -S "$SOCKET" ]; then
  echo "SKIP interlock docker tests: $SOCKET is not a socket (the interlock container mounts it)"
  exit 0
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

source_tag=${TAG:-dev}
if [ "${SKIP_BUILD:-0}" != "1" ] || ! docker image inspect "shoal:$source_tag" >/dev/null 2>&1; then
  TAG=$source_tag deploy/build-images.sh
fi
docker image inspect "shoal:$source_tag" >/dev/null 2>&1 || fail "image shoal:$source_tag missing (run deploy/build-images.sh)"
# The run uses its own tag, so another docker test rebuilding :dev meanwhile cannot change it.
image="shoal:$run"
docker tag "shoal:$source_tag" "$image"

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] || [ "${VERBOSE:-0}" = "1" ]; then
    echo "--- interlock logs (rc $rc) ---" >&2
    docker logs --tail 60 "$run-interlock" >&2 2>&1 || true
    local c
    for c in $(docker ps -aq --filter "label=shoal.cluster=$run"); do
      echo "--- logs of $(docker inspect -f '{{.Name}}' "$c" 2>/dev/null) (rc $rc) ---" >&2
      docker logs --tail 25 "$c" >&2 2>&1 || true
    done
  fi
  docker rm -f -v "$run-interlock" >/dev/null 2>&1 || true
  local ids
  ids=$(docker ps -aq --filter "label=shoal.cluster=$run" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
  docker network rm "$run" >/dev/null 2>&1 || true
  docker rmi "$image" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# An image built before the interlock existed cannot run this test: say so plainly.
help=$(docker run --rm --entrypoint /usr/local/bin/shoal "$image" interlock --help 2>&1) \
  || fail "shoal:$source_tag has no \`shoal interlock\` (rebuild it: deploy/build-images.sh): $help"

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
info() { docker exec "$1" /usr/local/bin/shoal info "$2"; }
ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$run\").IPAddress}}" "$1"; }
# stable N C...: each container C answers cluster-stable:size=N (membership agreed, migrations
# finished), all with the same cluster key.
stable() {
  local want=$1 keys="" c out
  shift
  for c in "$@"; do
    out=$(info "$c" "cluster-stable:size=$want") || return 1
    case "$out" in "" | *ERROR*) return 1 ;; esac
    keys+="$out"$'\n'
  done
  [ "$(sort -u <<<"$keys" | sed '/^$/d' | wc -l)" -eq 1 ]
}
# tipped C ADDR: container C pulses ADDR as a tipped endpoint.
tipped() {
  local out
  out=$(info "$1" "get-config:context=network") || return 2
  case ";$out;" in *";heartbeat.mesh-seed-address-port=$2;"*) return 0 ;; esac
  return 1
}
not_tipped() {
  local rc=0
  tipped "$@" || rc=$?
  [ "$rc" -eq 1 ]
}
# cleared ADDR C...: none of the containers lists ADDR any more.
cleared() {
  local addr=$1 c
  shift
  for c in "$@"; do not_tipped "$c" "$addr" || return 1; done
}
# start_node NAME: a node of the test's cluster, no seed, an in-memory namespace (RF 2).
start_node() {
  docker run -d --name "$run-$1" --network "$run" \
    --label "shoal.cluster=$run" \
    -e SHOAL_CLUSTER_NAME="$run" \
    -e SHOAL_NAMESPACE="test,replication-factor=2" \
    "$image" >/dev/null || fail "docker run $1 failed"
}
answers() { [ "$(info "$1" status)" = ok ]; }

echo "==> network $run (internal) and 3 nodes labelled shoal.cluster=$run, no seed"
docker network create --internal "$run" >/dev/null || fail "docker network create failed"
for n in db1 db2 db3; do start_node "$n"; done
for n in db1 db2 db3; do
  wait_until "$LIMIT_S" answers "$run-$n" || fail "$n does not answer info within ${LIMIT_S}s"
  # Without the interlock nothing joins them: each is its own cluster of one.
  wait_until "$LIMIT_S" stable 1 "$run-$n" || fail "$n is not a stable cluster of 1 before the interlock runs"
done
sleep 2
for n in db1 db2 db3; do
  stable 1 "$run-$n" || fail "$n joined another node before the interlock ran"
done
echo "ok: 3 separate one-node clusters before the interlock"

echo "==> shoal interlock --cluster $run (container, socket group $(stat -c %g "$SOCKET"), user 10001)"
t=$(now)
docker run -d --name "$run-interlock" --network "$run" \
  -v "$SOCKET:/var/run/docker.sock" --group-add "$(stat -c %g "$SOCKET")" \
  -e RUST_LOG=info \
  --entrypoint /usr/local/bin/shoal "$image" \
  interlock --cluster "$run" --network "$run" >/dev/null || fail "docker run interlock failed"
wait_until "$LIMIT_S" stable 3 "$run-db1" "$run-db2" "$run-db3" \
  || fail "no stable cluster of 3 within ${LIMIT_S}s of the interlock's start"
echo "FIGURE interlock start to stable cluster of 3 (nodes started with no seed): $(elapsed "$t" "$(now)") s"
ip1=$(ip_of "$run-db1")
ip2=$(ip_of "$run-db2")
ip3=$(ip_of "$run-db3")
for pair in "db1 $ip2" "db1 $ip3" "db2 $ip1" "db2 $ip3" "db3 $ip1" "db3 $ip2"; do
  read -r node addr <<<"$pair"
  tipped "$run-$node" "$addr:3002" || fail "$node does not list $addr:3002 as tipped"
done
echo "ok: every node lists the other two as tipped (heartbeat.mesh-seed-address-port)"
logs=$(docker logs "$run-interlock" 2>&1)
n_tips=$(grep -c 'command=tip:host=' <<<"$logs" || true)
[ "$n_tips" -ge 6 ] || fail "the interlock logged $n_tips tips, expected at least 6"
echo "ok: the interlock logged $n_tips tips"

echo "==> docker stop db2 ($ip2)"
t=$(now)
docker stop -t 30 "$run-db2" >/dev/null || fail "docker stop db2 failed"
t_stopped=$(now)
wait_until "$LIMIT_S" cleared "$ip2:3002" "$run-db1" "$run-db3" \
  || fail "db1 and db3 still list $ip2:3002 ${LIMIT_S}s after the stop (tip-clear did not take effect)"
t_cleared=$(now)
wait_until "$LIMIT_S" stable 2 "$run-db1" "$run-db3" || fail "db1 and db3 did not converge on size 2 within ${LIMIT_S}s"
t_stable=$(now)
echo "FIGURE docker stop of db2 (graceful leave, returned after $(elapsed "$t" "$t_stopped") s) to its address cleared on both others: $(elapsed "$t" "$t_cleared") s"
echo "FIGURE docker stop of db2 to stable cluster of 2: $(elapsed "$t" "$t_stable") s"
logs=$(docker logs "$run-interlock" 2>&1)
n_clears=$(grep -c "command=tip-clear:host-port-list=$ip2:3002" <<<"$logs" || true)
[ "$n_clears" -eq 2 ] || fail "the interlock logged $n_clears clears of $ip2:3002, expected 2 (one per remaining node)"
echo "ok: the interlock cleared $ip2:3002 from both remaining nodes"

echo "==> docker run db4"
t=$(now)
start_node db4
wait_until "$LIMIT_S" stable 3 "$run-db1" "$run-db3" "$run-db4" \
  || fail "no stable cluster of 3 within ${LIMIT_S}s of starting db4"
echo "FIGURE docker run of a 4th node to stable cluster of 3: $(elapsed "$t" "$(now)") s"
ip4=$(ip_of "$run-db4")
for c in db1 db3; do
  tipped "$run-$c" "$ip4:3002" || fail "$c does not list db4 ($ip4:3002) as tipped"
done
if [ "$ip4" != "$ip2" ]; then
  cleared "$ip2:3002" "$run-db1" "$run-db3" "$run-db4" || fail "$ip2:3002 (db2, stopped) is listed again"
fi
echo "ok: db4 joined through the interlock"

echo "interlock docker tests passed"
