#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md on this machine (loopback only).
# Usage: bench/run.sh [OUT_DIR]   (default ./bench-results; takes ~18 minutes)
# Needs Go, and Node.js + npm for the comparison with the reference peer.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results}
mkdir -p "$OUT"
# A fresh random secret per run: a secret printed in docs must never work.
export BENCH_SECRET=${BENCH_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export BENCH_DATA_DIR=$(mktemp -d)
BIN=$(mktemp -d)/voicegate
PEER_DIR=$(mktemp -d)
URL=http://127.0.0.1:3100/webhook/vapi
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$BENCH_DATA_DIR" "$PEER_DIR"; }
trap cleanup EXIT

go build -o "$BIN" ./cmd/voicegate
BENCH=$(dirname "$BIN")/voicegate-bench
go build -o "$BENCH" ./cmd/voicegate-bench
"$BIN" version

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

API_PID=
start_api() { # $1 = delay
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null || true
  "$BENCH" api --listen 127.0.0.1:9090 --delay "$1" >/dev/null & API_PID=$!; PIDS+=("$API_PID"); wait_port 9090
}
SERVER_PID=
start_server() { # a fresh voicegate with an empty database
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$BENCH_DATA_DIR"/*
  "$BIN" serve --config bench/voicegate-bench.yaml 2>>"$OUT/server.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port 3100
}
bench() { # $1 = name, rest = flags
  local name=$1; shift
  echo "== $name"
  "$BENCH" --url $URL --config bench/voicegate-bench.yaml --server-pid "$SERVER_PID" --json-out "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

start_api 0
start_server
# 1. Closed loop, keep-alive, 32 senders: throughput, p99, server CPU per request.
bench closed-realistic --mode closed --concurrency 32 --mix realistic --warmup 3s --duration 10s --repeat 3 --max-requests 450000
bench closed-partials  --mode closed --concurrency 32 --mix partials  --warmup 3s --duration 10s --repeat 3 --max-requests 450000
# 2. Open loop at 2,000 requests/s (latency from the scheduled send time).
bench open-2000 --mode open --rate 2000 --concurrency 64 --mix realistic --warmup 3s --duration 20s --repeat 3
# 3. Tool calls at 500/s against an internal API that answers in 1 ms.
start_api 1ms
bench tools-500 --mode open --rate 500 --concurrency 32 --mix tools --warmup 3s --duration 20s --repeat 3
start_api 0
# 4. Scale: 1k, 10k, 100k live calls held by one fresh process, at 2,000 requests/s.
for n in 1000 10000 100000; do
  start_server
  bench "live-$n" --mode open --rate 2000 --concurrency 64 --mix realistic --warmup 2s --duration 10s --live-calls "$n"
done

# 5. Against the bare baseline (read body, check HMAC, decode envelope; same
#    generator): what voicegate's real work costs on top.
"$BENCH" bare --listen 127.0.0.1:3200 --secret "$BENCH_SECRET" >/dev/null & BARE_PID=$!; PIDS+=("$BARE_PID"); wait_port 3200
start_server
for mix in realistic partials; do
  echo "== baseline-$mix"
  "$BENCH" --url $URL --config bench/voicegate-bench.yaml --server-pid "$SERVER_PID" \
    --compare-url http://127.0.0.1:3200/webhook/vapi --compare-pid "$BARE_PID" --compare-name bare-handler \
    --mode closed --concurrency 32 --mix $mix --warmup 3s --duration 10s --repeat 3 --max-requests 450000 \
    --json-out "$OUT/baseline-$mix.json" | tee "$OUT/baseline-$mix.txt"
done
kill "$BARE_PID"

# 6. Side by side with the Node/Express reference, same generator and mix
#    (legacy function-call for tools, x-vapi-signature as it expects).
if command -v npm >/dev/null && command -v node >/dev/null; then
  cp -r ../shared/peers/node-express/. "$PEER_DIR/"
  (cd "$PEER_DIR" && npm install --no-audit --no-fund --silent)
  (cd "$PEER_DIR" && VAPI_SERVER_SECRET=$BENCH_SECRET INTERNAL_API_URL=http://127.0.0.1:9090/query PORT=3001 exec node server.js >/dev/null) & PEER_PID=$!; PIDS+=("$PEER_PID")
  wait_port 3001
  start_server
  for mode in closed open; do
    extra=(--mode closed --concurrency 32 --max-requests 300000)
    [ $mode = open ] && extra=(--mode open --rate 2000 --concurrency 64)
    echo "== compare-$mode"
    "$BENCH" --url $URL --server-pid "$SERVER_PID" --compare-url http://127.0.0.1:3001/webhook/vapi --compare-pid "$PEER_PID" \
      --preset vapi-signature --secret "$BENCH_SECRET" --tool queryDatabase --tool-style function-call \
      --mix realistic --warmup 3s --duration 10s --repeat 3 --json-out "$OUT/compare-$mode.json" "${extra[@]}" | tee "$OUT/compare-$mode.txt"
  done
else
  echo "node/npm not found: comparison skipped" | tee "$OUT/compare-skipped.txt"
fi

# 7. Twilio's webhooks (BENCHMARKS.md, "Twilio webhooks"): per simulated call an
#    incoming call and its in-progress and completed status callbacks, signed
#    for twilio.public_base_url and sent to the server's own address (as a
#    TLS-terminating proxy would); every one writes SQLite. Alternating with the
#    realistic Vapi mix (the order swapped in the second pair), a fresh server
#    with an empty database for each run.
TWILIO_URL=http://127.0.0.1:3100
for i in 1 2 3; do
  order="realistic twilio"; [ "$i" = 2 ] && order="twilio realistic"
  for mix in $order; do
    start_server
    u=$URL; [ "$mix" = twilio ] && u=$TWILIO_URL   # this later --url wins over bench's
    bench "closed-$mix-vs-twilio-$i" --mode closed --concurrency 32 --mix "$mix" --warmup 3s --duration 10s --max-requests 450000 --url "$u"
  done
done

# 8. The hot path in isolation: time and allocations per request.
go test ./internal/gateway -run '^$' -bench . -benchmem -count 5 | tee "$OUT/go-bench.txt"
echo "results in $OUT/"
