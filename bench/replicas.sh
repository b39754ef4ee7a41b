#!/usr/bin/env bash
# Shared state, measured (BENCHMARKS.md, "Shared state (several replicas)"):
# three replicas with state.driver redis and storage.driver postgres against
# one with memory state and SQLite, the same realistic mix, alternating.
# Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust,
# database test). Usage: bench/replicas.sh [OUT_DIR]  (~15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/replicas}
mkdir -p "$OUT"
export BENCH_SECRET=${BENCH_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
RUN=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
SCHEMA=vg_bench_$RUN
# A Redis of its own (not the machine's shared one, which other tests use:
# INFO CPU and used_memory would count their work too).
REDIS_PORT=${BENCH_REDIS_PORT:-6390}
export BENCH_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 BENCH_REDIS_PREFIX="vgbench:$RUN:"
export BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=$SCHEMA"
MEM_DIR=$(mktemp -d) SHARED_DIR=$(mktemp -d)
BIN=$(mktemp -d)/voicegate BENCH=$(dirname "$BIN")/voicegate-bench
PIDS=()
cleanup() {
  # The run's keys first (in case BENCH_REDIS_PORT named a Redis that outlives
  # the script); the replay entries' keys are binary: deleted by a script.
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" EVAL "local c='0' repeat local r=redis.call('SCAN',c,'MATCH',ARGV[1],'COUNT',1000) c=r[1] for _,k in ipairs(r[2]) do redis.call('DEL',k) end until c=='0'" 0 "$BENCH_REDIS_PREFIX*" >/dev/null 2>&1 || true
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  rm -rf "$MEM_DIR" "$SHARED_DIR"
}
trap cleanup EXIT
go build -o "$BIN" ./cmd/voicegate
go build -o "$BENCH" ./cmd/voicegate-bench
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$SHARED_DIR" >"$OUT/redis.log" 2>&1 & PIDS+=($!); wait_port "$REDIS_PORT"
"$BENCH" api --listen 127.0.0.1:9090 >/dev/null & PIDS+=($!); wait_port 9090
# One replica with memory state and SQLite (bench/voicegate-bench.yaml, :3100).
BENCH_DATA_DIR=$MEM_DIR "$BIN" serve --config bench/voicegate-bench.yaml 2>>"$OUT/server-memory.log" & MEM_PID=$!; PIDS+=($MEM_PID); wait_port 3100
# Its keyring is the replicas' one too (records.keyring_env).
export BENCH_KEYRING="$(cat "$MEM_DIR/keyring.json")"
REP_PIDS=()
for i in 1 2 3; do
  BENCH_PORT=310$i BENCH_ADMIN_PORT=606$((i + 1)) BENCH_DATA_DIR=$SHARED_DIR \
    "$BIN" serve --config bench/voicegate-replicas.yaml 2>>"$OUT/server-replica$i.log" & REP_PIDS+=($!); PIDS+=($!)
  wait_port 310$i   # the first migrates the schema; the others start after it
done
# For the decomposition: one replica with PostgreSQL but memory state (:3104).
BENCH_STATE_DRIVER=memory BENCH_REDIS_URL= BENCH_PORT=3104 BENCH_ADMIN_PORT=6065 BENCH_DATA_DIR=$SHARED_DIR \
  "$BIN" serve --config bench/voicegate-replicas.yaml 2>>"$OUT/server-memory-pg.log" & PG_PID=$!; PIDS+=($PG_PID); wait_port 3104

replicas() { # $1 = name, rest = flags: three Redis replicas against the memory one, alternating
  local name=$1; shift
  echo "== $name"
  "$BENCH" --url http://127.0.0.1:3101/webhook/vapi --target http://127.0.0.1:3102 --target http://127.0.0.1:3103 \
    --server-pid "${REP_PIDS[0]}" --server-pid "${REP_PIDS[1]}" --server-pid "${REP_PIDS[2]}" --redis-url "$BENCH_REDIS_URL" \
    --name redis-x3 --compare-url http://127.0.0.1:3100/webhook/vapi --compare-pid "$MEM_PID" --compare-name memory-x1 \
    --secret "$BENCH_SECRET" --mix realistic --json-out "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}
# 1. CPU per request at saturation, and at 2,000 requests/s (latency too).
replicas closed --mode closed --concurrency 32 --warmup 3s --duration 10s --repeat 3 --max-requests 300000
replicas open-2000 --mode open --rate 2000 --concurrency 64 --warmup 3s --duration 20s --repeat 3
# 1b. The decomposition: one Redis replica against one with memory state, both on PostgreSQL.
echo "== closed-x1-postgres"
"$BENCH" --url http://127.0.0.1:3101/webhook/vapi --server-pid "${REP_PIDS[0]}" --redis-url "$BENCH_REDIS_URL" --name redis-x1 \
  --compare-url http://127.0.0.1:3104/webhook/vapi --compare-pid "$PG_PID" --compare-name memory-pg-x1 \
  --secret "$BENCH_SECRET" --mix realistic --mode closed --concurrency 32 --warmup 3s --duration 10s --repeat 3 --max-requests 300000 \
  --json-out "$OUT/closed-x1-postgres.json" | tee "$OUT/closed-x1-postgres.txt"
# 1c. Profiles (admin listeners): a replica under the three-replica load, and the memory server under its own.
profile() { # $1 = name, $2 = admin port, rest = bench flags
  local name=$1 port=$2; shift 2
  (sleep 4; curl -s -o "$OUT/$name.pprof" "http://127.0.0.1:$port/debug/pprof/profile?seconds=8") & local CURL=$!
  "$BENCH" --secret "$BENCH_SECRET" --mix realistic --mode closed --concurrency 32 --warmup 3s --duration 10s --max-requests 300000 "$@" >/dev/null 2>&1
  wait $CURL
  go tool pprof -top -nodecount=45 "$BIN" "$OUT/$name.pprof" > "$OUT/$name-top.txt" 2>/dev/null
  go tool pprof -top -cum -nodecount=60 "$BIN" "$OUT/$name.pprof" > "$OUT/$name-cum.txt" 2>/dev/null
}
profile profile-replica1 6062 --url http://127.0.0.1:3101/webhook/vapi --target http://127.0.0.1:3102 --target http://127.0.0.1:3103
profile profile-memory 6061 --url http://127.0.0.1:3100/webhook/vapi
# 2. Redis memory per live call (10,000 calls held) and per request (replay
#    entries, window 5 min), three replicas alone.
echo "== live-10000"
"$BENCH" --url http://127.0.0.1:3101/webhook/vapi --target http://127.0.0.1:3102 --target http://127.0.0.1:3103 \
  --server-pid "${REP_PIDS[0]}" --server-pid "${REP_PIDS[1]}" --server-pid "${REP_PIDS[2]}" --redis-url "$BENCH_REDIS_URL" \
  --name redis-x3 --secret "$BENCH_SECRET" --mix realistic --mode open --rate 2000 --concurrency 64 --warmup 2s --duration 10s \
  --live-calls 10000 --json-out "$OUT/live-10000.json" | tee "$OUT/live-10000.txt"
# Cross-check: what the prefix's keys hold, by kind (c call sessions, r replay
# entries, l leases, e ended calls): count, and MEMORY USAGE averaged over the
# first 2,000 of each; then the sorted set of live calls.
for kind in c r l e; do
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" EVAL "local c='0' local n=0 local s=0 repeat local r=redis.call('SCAN',c,'MATCH',ARGV[1],'COUNT',1000) c=r[1] for _,k in ipairs(r[2]) do n=n+1 if n<=2000 then s=s+redis.call('MEMORY','USAGE',k) end end until c=='0' if n==0 then return {0,0} end return {n, math.floor(s/math.min(n,2000))}" 0 "$BENCH_REDIS_PREFIX$kind:*" |
    paste -sd' ' | awk -v k=$kind '{print "keys " k ": " $1 ", MEMORY USAGE average " $2 " bytes"}' | tee -a "$OUT/live-10000.txt"
done
echo "live set: $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ZCARD "${BENCH_REDIS_PREFIX}live") members, MEMORY USAGE $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" MEMORY USAGE "${BENCH_REDIS_PREFIX}live") bytes" | tee -a "$OUT/live-10000.txt"
# 3. The hot path in isolation, memory against Redis state.
VOICEGATE_TEST_REDIS_URL=$BENCH_REDIS_URL go test ./internal/gateway -run '^$' -bench StateMix -benchmem -count 5 | tee "$OUT/go-bench-state.txt"
echo "results in $OUT/"
