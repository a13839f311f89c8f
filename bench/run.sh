#!/usr/bin/env bash
# bench/run.sh: measures shoald and redis-server side by side with the same generator
# (`shoal bench`), the same workload and the same pinning, and prints one table.
#
# Each server runs alone on core $SERVER_CORE (taskset), the generator on $CLIENT_CORE. For
# each server: start it, load $KEYS keys of $VALUE_SIZE bytes, run the $READS/(100-$READS)
# read/update mix at $CONCURRENCY connections for $DURATION seconds, read its CPU time and RSS
# from /proc, stop it. Everything listens on and talks to 127.0.0.1 only; every phase is
# bounded by `timeout`; whatever this script started is stopped on exit (trap).
#
# Knobs (environment):      DURATION=30  KEYS=1000000  VALUE_SIZE=100  READS=95  CONCURRENCY=32
#   SERVER_CORE=0  CLIENT_CORE=1  TARGETS="shoal redis"  OUT=<results dir>  CARGO_TARGET_DIR
#   NO_BUILD=1 to use already built release binaries.
# Results: $OUT/<target>.json (the generator's --json output), $OUT/<target>.server.log,
# $OUT/table.md (the side-by-side table in Markdown, for bench/README.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-30}
KEYS=${KEYS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-100}
READS=${READS:-95}
CONCURRENCY=${CONCURRENCY:-32}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
TARGETS=${TARGETS:-"shoal redis"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
OUT=${OUT:-$CARGO_TARGET_DIR/bench/$(date -u +%Y%m%dT%H%M%SZ)}
# Upper bound of one generator run: loading at a pessimistic 5,000 ops/s plus the measured phase.
BENCH_TIMEOUT_S=$((DURATION + KEYS / 5000 + 120))
START_TIMEOUT_S=30

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

mkdir -p "$OUT"
work=$(mktemp -d /tmp/shoal-bench.XXXXXX)
server_pid=""

stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ----------------------------------------------------------------------------------
need_apt=()
command -v redis-server >/dev/null || [[ " $TARGETS " != *" redis "* ]] || need_apt+=(redis-server)
command -v jq >/dev/null || need_apt+=(jq)
command -v taskset >/dev/null || need_apt+=(util-linux)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} with apt"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [[ -z "${NO_BUILD:-}" ]]; then
    log "building release binaries (target dir $CARGO_TARGET_DIR)"
    (cd "$repo" && cargo build --release -q -p shoal-server -p shoal-cli)
fi
SHOALD=$CARGO_TARGET_DIR/release/shoald
SHOAL=$CARGO_TARGET_DIR/release/shoal
[[ -x "$SHOAL" ]] || die "no $SHOAL"

# --- helpers ------------------------------------------------------------------------------
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints a port P such that nothing listens on P..P+3 (shoald's service, fabric, heartbeat and
# HTTP ports), starting from a random one.
free_port() {
    local p=$((20000 + RANDOM % 20000))
    while listening "$p" || listening $((p + 1)) || listening $((p + 2)) || listening $((p + 3)); do
        p=$((p + 4))
    done
    echo "$p"
}

wait_for_port() {
    local port=$1 name=$2
    for _ in $(seq $((START_TIMEOUT_S * 10))); do
        listening "$port" && return 0
        kill -0 "$server_pid" 2>/dev/null || { tail -20 "$OUT/$name.server.log" >&2; die "$name exited during startup"; }
        sleep 0.1
    done
    die "$name did not listen on port $port within ${START_TIMEOUT_S}s"
}

# Busy share of the machine over 2 seconds, in percent of all cores (from /proc/stat).
machine_busy_pct() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 2
    read -r -a b < <(grep '^cpu ' /proc/stat)
    local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
    local idle=$(( (b[4]+b[5]) - (a[4]+a[5]) ))
    echo $(( 100 * busy / (busy + idle > 0 ? busy + idle : 1) ))
}

# Runs the generator against the server started last; its JSON goes to $OUT/$name.json.
run_generator() {
    local name=$1 port=$2; shift 2
    local busy
    busy=$(machine_busy_pct)
    log "$name: machine busy ${busy}% before the run (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$busy" >"$OUT/$name.busy-before-pct"
    timeout --signal=INT --kill-after=10 "$BENCH_TIMEOUT_S" \
        taskset -c "$CLIENT_CORE" "$SHOAL" bench --host 127.0.0.1 --port "$port" \
        --keys "$KEYS" --value-size "$VALUE_SIZE" --reads "$READS" --concurrency "$CONCURRENCY" \
        --duration "$DURATION" --load --server-pid "$server_pid" --json "$@" \
        >"$OUT/$name.json" 2>"$OUT/$name.stderr" ||
        { cat "$OUT/$name.stderr" >&2; log "$name: generator failed (its JSON, if any, is kept)"; }
    [[ -s "$OUT/$name.json" ]] || return 1
    log "$name: done; server RSS $(jq -r '.server_rss_bytes.after_load' "$OUT/$name.json") bytes after load"
}

bench_shoal() {
    [[ -x "$SHOALD" ]] || die "no $SHOALD"
    local port
    port=$(free_port)
    mkdir -p "$work/shoal-data"
    log "shoal: starting shoald on 127.0.0.1:$port, core $SERVER_CORE"
    taskset -c "$SERVER_CORE" "$SHOALD" --address 127.0.0.1 --service-port "$port" \
        --fabric-port $((port + 1)) --heartbeat-port $((port + 2)) --http-port $((port + 3)) \
        --data-dir "$work/shoal-data" --namespace test,memory-size=4G --log-level warn \
        >"$OUT/shoal.server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port" shoal
    run_generator shoal "$port" --target aerospike --namespace test || true
    stop_server
}

bench_redis() {
    local port
    port=$(free_port)
    log "redis: starting redis-server on 127.0.0.1:$port, core $SERVER_CORE, no persistence"
    taskset -c "$SERVER_CORE" redis-server --bind 127.0.0.1 --port "$port" --save "" \
        --appendonly no --daemonize no --dir "$work" --loglevel warning \
        >"$OUT/redis.server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port" redis
    run_generator redis "$port" --target redis || true
    stop_server
}

# --- run ------------------------------------------------------------------------------------
log "results in $OUT; $(nproc) cores; generator on core $CLIENT_CORE, servers on core $SERVER_CORE"
log "workload: $KEYS keys, ${VALUE_SIZE}-byte values, $READS% reads, $CONCURRENCY connections, ${DURATION}s"
ran=()
for t in $TARGETS; do
    case $t in
    shoal) bench_shoal ;;
    redis) bench_redis ;;
    *) die "unknown target $t (shoal, redis)" ;;
    esac
    [[ -s "$OUT/$t.json" ]] && ran+=("$t")
done
((${#ran[@]})) || die "no target produced results"

# --- table ----------------------------------------------------------------------------------
# One row per figure (label; jq expression; jq format), one column per target. A missing
# figure prints as "-".
figure() { # target jq-expression format
    jq -r "($2) as \$v | if \$v == null then \"-\" else (\$v | $3) end" "$OUT/$1.json"
}
int='floor | tostring'
one='(. * 10 | round / 10) | tostring'
two='(. * 100 | round / 100) | tostring'
rows=(
    "load ops/s;.load.ops_per_s;$int"
    "load server CPU µs/op;.load.server_cpu_us_per_op;$two"
    "RSS after load, bytes/record;.server_rss_bytes_per_record;$one"
    "RSS added by load, bytes/record;.server_rss_growth_bytes_per_record;$one"
    "run ops/s;.run.ops_per_s;$int"
    "read p50 / p99 / p999 µs;.run.by_type.read;\"\(.p50_us|$one) / \(.p99_us|$one) / \(.p999_us|$one)\""
    "update p50 / p99 / p999 µs;.run.by_type.update;\"\(.p50_us|$one) / \(.p99_us|$one) / \(.p999_us|$one)\""
    "all p50 / p99 / p999 / max µs;.run.by_type.all;\"\(.p50_us|$one) / \(.p99_us|$one) / \(.p999_us|$one) / \(.max_us|$int)\""
    "server CPU µs/op;.run.server_cpu_us_per_op;$two"
    "server CPU, cores;.run.server_cpu_cores;$two"
    "generator CPU µs/op;.run.generator_cpu_us_per_op;$two"
    "other processes' CPU, cores;.run.other_cpu_cores;$two"
    "errors (load + run);(.load.errors // 0) + (.run.errors // 0);tostring"
    "read misses;.run.misses;tostring"
)
{
    printf '| figure |'
    for t in "${ran[@]}"; do printf ' %s |' "$t"; done
    printf '\n|---|'
    for _ in "${ran[@]}"; do printf -- '---:|'; done
    printf '\n'
    for row in "${rows[@]}"; do
        IFS=';' read -r label expr fmt <<<"$row"
        printf '| %s |' "$label"
        for t in "${ran[@]}"; do printf ' %s |' "$(figure "$t" "$expr" "$fmt")"; done
        printf '\n'
    done
} >"$OUT/table.md"

echo
echo "$(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r); $KEYS keys, ${VALUE_SIZE} B values, $READS% reads, $CONCURRENCY connections, ${DURATION}s; server core $SERVER_CORE, generator core $CLIENT_CORE"
column -t -s '|' -o ' ' < <(sed -e '2d' -e 's/^| //' -e 's/ |$//' -e 's/ | /|/g' "$OUT/table.md") 2>/dev/null || cat "$OUT/table.md"
for t in "${ran[@]}"; do
    err=$(jq -r '[.load.first_error, .run.first_error] | map(select(. != null)) | first // empty' "$OUT/$t.json")
    [[ -z "$err" ]] || echo "$t: first error: $err"
    early=$(jq -r '[.load.stopped_early, .run.stopped_early] | map(select(. != null)) | first // empty' "$OUT/$t.json")
    [[ -z "$early" ]] || echo "$t: stopped early: $early"
    echo "$t: machine busy before the run: $(cat "$OUT/$t.busy-before-pct")% of all cores"
done
echo "results: $OUT (table.md, <target>.json)"
