#!/usr/bin/env bash
# Records on, end to end: HEAD vs ece2143 (before records), alternating; then HEAD on PostgreSQL.
set -u
cd /tmp/m9
export BENCH_SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
./vgbench api --listen 127.0.0.1:9090 --delay 0 >/dev/null 2>&1 & API=$!
wait_port 9090
run() { # name bin cfg
  export BENCH_DATA_DIR=$(mktemp -d)
  export PG_SCHEMA=vg_m9_$RANDOM$RANDOM
  ./$2 serve --config $3 2>>server-$1.log & S=$!
  wait_port 3100
  echo "== $1" >> results.txt
  ./vgbench --url http://127.0.0.1:3100/webhook/vapi --config new.yaml --server-pid $S --mode closed --concurrency 32 --mix realistic --warmup 3s --duration 10s --repeat 1 --max-requests 300000 >> results.txt 2>&1
  kill $S; wait $S 2>/dev/null
  rm -rf "$BENCH_DATA_DIR"
  psql -q postgres://postgres@127.0.0.1:5432/test -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1
}
: > results.txt
for round in 1 2 3; do
  run new-sqlite-$round vg-new new.yaml
  run old-sqlite-$round vg-old old.yaml
done
for round in 1 2; do
  run new-postgres-$round vg-new pg.yaml
done
kill $API
echo done >> results.txt
