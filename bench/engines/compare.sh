#!/usr/bin/env bash
# Engine comparison for issue 16 (bench/analysis.md, "Event-driven engine").
# Starts one SEND_PULSE server per engine (this module), the daemon as built
# from this tree (auth NONE), and redis-server, then runs the same closed
# loop (64 connections × 4 KiB, one request in flight each) against them in
# interleaved rounds, reading each server's CPU time from /proc; then
# counts system calls per answer with perf's tracepoints.
#
#   bench/engines/compare.sh [OUT_DIR]   ROUNDS, DURATION, TARGETS, LOOPS (event loops of every engine) override
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-/tmp/engbench/out}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
TARGETS=${TARGETS:-"own gnet nbio netpoll goroutine daemon redis"}
mkdir -p "$OUT"
BIN=$OUT/bin
mkdir -p "$BIN"
go build -o "$BIN/engines" .
(cd ../.. && go build -o "$BIN/pacemaker" ./cmd/pacemaker && go build -o "$BIN/pacemakerctl" ./cmd/pacemakerctl)

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
declare -A PORT PID
port=7100
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "no server on $1" >&2; exit 1; }
for t in $TARGETS; do
  port=$((port + 1))
  case $t in
    redis)
      mkdir -p "$OUT/redis"
      redis-server --port $port --bind 127.0.0.1 --protected-mode no --save "" --appendonly no --dir "$OUT/redis" --daemonize no >"$OUT/redis.log" 2>&1 &
      ;;
    daemon)
      printf 'pacemaker.auth.method: NONE\npacemaker.max.connections: 1000000\npacemaker.max.connections.per.peer: 1000000\n' >"$OUT/daemon.yaml"
      "$BIN/pacemaker" --config "$OUT/daemon.yaml" --listen 127.0.0.1 --port $port --log-level warn 2>"$OUT/daemon.log" &
      ;;
    *)
      "$BIN/engines" serve -engine "$t" ${LOOPS:+-loops $LOOPS} -addr 127.0.0.1:$port >"$OUT/$t.log" 2>&1 &
      ;;
  esac
  PID[$t]=$!
  PIDS+=($!)
  PORT[$t]=$port
  wait_port $port
done

load() { # target seconds-flag json
  local t=$1 target=pacemaker
  [ "$t" = redis ] && target=redis
  "$BIN/pacemakerctl" --servers "127.0.0.1:${PORT[$t]}" bench --target $target --mode load --conns 64 --keys 4000 \
    --value-size 4096 --warmup 2s --duration "$2" --pid "${PID[$t]}" --json 2>/dev/null >"$3"
}

echo "round target writes/s per-server-CPU-s server-CPU% gen-CPU% p99-ms load1" | tee "$OUT/rounds.txt"
for r in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    load "$t" "$DURATION" "$OUT/load-$t-$r.json"
    python3 - "$OUT/load-$t-$r.json" "$r" "$t" <<'PY' | tee -a "$OUT/rounds.txt"
import json, sys
j = json.load(open(sys.argv[1]))
w, s, g = j["writes"], j["server"], j["generator"]
print(sys.argv[2], sys.argv[3], round(w["achieved_per_second"]), round(j["requests_per_server_cpu_second"]),
      round(s["cpu_percent_of_one_core"]), round(g["cpu_percent_of_one_core"]), round(w["latency"]["p99_ms"], 2),
      j["environment"]["loadavg_1m_start"])
PY
  done
done

# Medians over the rounds, and each round's ratio to redis (same round).
python3 - "$OUT/rounds.txt" <<'PY' | tee "$OUT/summary.txt"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
per = {}
for r, t, ws, cpu_s, *_ in rows:
    per.setdefault(t, {})[r] = float(cpu_s)
print("target median-per-CPU-s min max median-ratio-to-redis(per round)")
for t, by in per.items():
    v = list(by.values())
    ratio = ""
    if "redis" in per and t != "redis":
        rr = [by[r] / per["redis"][r] for r in by if r in per["redis"]]
        ratio = "%.2f (%s)" % (statistics.median(rr), " ".join("%.2f" % x for x in rr))
    print(t, round(statistics.median(v)), round(min(v)), round(max(v)), ratio)
PY

if command -v perf >/dev/null && [ "${SYSCALLS:-1}" = 1 ]; then
  events=syscalls:sys_enter_read,syscalls:sys_enter_readv,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvmsg
  printf '%-10s %9s %6s %6s %6s %6s %6s %6s %6s\n' server answers read write epoll ctl futex sleep total | tee "$OUT/syscalls.txt"
  for t in $TARGETS; do
    # perf watches the server for the whole run of the generator (no
    # warm-up), so every answer counted is in its window.
    perf stat -x, -e "$events" -p "${PID[$t]}" -- sleep 7 2>"$OUT/perf-$t.txt" &
    pf=$!
    sleep 0.5
    target=pacemaker
    [ "$t" = redis ] && target=redis
    "$BIN/pacemakerctl" --servers "127.0.0.1:${PORT[$t]}" bench --target $target --mode load --conns 64 --keys 4000 \
      --value-size 4096 --warmup 0s --duration 5s --pid "${PID[$t]}" --json 2>/dev/null >"$OUT/sys-$t.json"
    wait $pf || true
    awk -F, -v t="$t" -v n="$(python3 -c "import json;print(json.load(open('$OUT/sys-$t.json'))['writes']['completed'])")" '
      /enter_read,|enter_readv|enter_recvfrom|enter_recvmsg/ {rd+=$1} /enter_write,|enter_writev|enter_sendto|enter_sendmsg/ {wr+=$1}
      /epoll_wait|epoll_pwait/ {ep+=$1} /epoll_ctl/ {ct+=$1} /futex/ {fx+=$1} /nanosleep/ {ns+=$1}
      END { if (n<1) n=1; printf "%-10s %9.0f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f\n", t, n, rd/n, wr/n, ep/n, ct/n, fx/n, ns/n, (rd+wr+ep+ct+fx+ns)/n }' "$OUT/perf-$t.txt" | tee -a "$OUT/syscalls.txt"
  done
fi
