#!/usr/bin/env bash
cd /tmp/m9
export BENCH_SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
./vgbench api --listen 127.0.0.1:9090 --delay 0 >/dev/null 2>&1 & API=$!
wait_port 9090
for round in 1 2 3; do for mix in twilio realistic; do
  export BENCH_DATA_DIR=$(mktemp -d)
  ./vg-new serve --config new.yaml 2>>tw-server.log & S=$!
  wait_port 3100
  echo "== $mix-$round"
  u=http://127.0.0.1:3100/webhook/vapi; [ $mix = twilio ] && u=http://127.0.0.1:3100
  ./vgbench --url $u --config new.yaml --server-pid $S --mode closed --concurrency 32 --mix $mix --warmup 3s --duration 10s --repeat 1 --max-requests 300000 2>&1 | grep -E "throughput|server pid|  all "
  kill $S; wait $S 2>/dev/null; rm -rf "$BENCH_DATA_DIR"
done; done
kill $API
