#!/usr/bin/env bash
# RSS per idle connection (issue 16): for each server, CONNS connections
# (from 127.0.0.2–9) each send one 4 KiB SEND_PULSE to one key, read the
# answer and stay open; the server's VmRSS after minus before, per
# connection. Kernel socket memory is not in RSS. CONNS defaults to 19,900:
# this container caps a process at 20,000 open files and the server needs a
# few for itself.
#
#   bench/engines/idle.sh [OUT_DIR]      CONNS, TARGETS override
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-/tmp/engbench/idle}
CONNS=${CONNS:-19900}
limit=$(ulimit -n)
if [ "$limit" != unlimited ] && [ "$CONNS" -gt $((limit - 100)) ]; then
  echo "idle.sh: open-file limit $limit: $((limit - 100)) connections instead of $CONNS" >&2
  CONNS=$((limit - 100))
fi
TARGETS=${TARGETS:-"own gnet nbio netpoll goroutine daemon redis"}
mkdir -p "$OUT/bin"
BIN=$OUT/bin
go build -o "$BIN/engines" .
(cd ../.. && go build -o "$BIN/pacemaker" ./cmd/pacemaker)
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "no server on $1" >&2; exit 1; }
port=7300
for t in $TARGETS; do
  port=$((port + 1))
  case $t in
    redis)
      mkdir -p "$OUT/redis"
      redis-server --port $port --bind 127.0.0.1 --protected-mode no --save "" --appendonly no --dir "$OUT/redis" \
        --maxclients $((CONNS + 16)) --daemonize no >"$OUT/redis.log" 2>&1 &
      ;;
    daemon)
      printf 'pacemaker.auth.method: NONE\npacemaker.max.connections: 1000000\npacemaker.max.connections.per.peer: 1000000\n' >"$OUT/daemon.yaml"
      "$BIN/pacemaker" --config "$OUT/daemon.yaml" --listen 127.0.0.1 --port $port --log-level warn 2>"$OUT/daemon.log" &
      ;;
    *)
      "$BIN/engines" serve -engine "$t" -addr 127.0.0.1:$port >"$OUT/$t.log" 2>&1 &
      ;;
  esac
  pid=$!
  wait_port $port
  printf '%-10s ' "$t"
  resp=()
  [ "$t" = redis ] && resp=(-redis)
  "$BIN/engines" idle "${resp[@]}" -addr 127.0.0.1:$port -conns "$CONNS" -pid $pid -settle 5s | tee "$OUT/idle-$t.txt"
  kill $pid; wait $pid 2>/dev/null || true
done
