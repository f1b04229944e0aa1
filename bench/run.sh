#!/usr/bin/env bash
# Side-by-side benchmark, in one run: pacemaker (bin/pacemaker) against
# redis-server and ZooKeeper (Debian's packages), each started here on
# loopback with throwaway directories, carrying the same workloads from
# pacemaker-bench (cmd/pacemaker-bench). Writes every result as JSON to $BENCH_OUT, prints
# a summary, and writes docs/BENCHMARKS.md with a latency plot.
#
#   make bench                # = scripts/install-deps.sh bench; make build; bench/run.sh
#   BENCH_QUICK=1 bench/run.sh  # seconds-long runs, to check the script itself
#
# Needs: bin/pacemaker and bin/pacemaker-bench (make build), redis-server,
# redis-benchmark, java + /usr/share/java/zookeeper.jar, gnuplot, go.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/bin}
OUT=${BENCH_OUT:-$ROOT/bench/out}
DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
PLOT=${BENCH_PLOT:-$(dirname "$DOC")/BENCHMARKS-latency.png}
ANALYSIS=${BENCH_ANALYSIS:-$ROOT/bench/analysis.md}
ZK_JAR=/usr/share/java/zookeeper.jar

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  WARMUP=2s DURATION=4s
  SWEEP_RATES=${SWEEP_RATES:-"2000 8000"} SWEEP_WARMUP=1s SWEEP_DURATION=3s
  STORM_SUPERVISORS=${STORM_SUPERVISORS:-50} STORM_WARMUP=4s STORM_DURATION=11s
  MAX_START=50 MAX_LIMIT=100 MAX_WARMUP=3s MAX_DURATION=5s MAX_STEPS=1
  FILL_KEYS=20000 LIST_QUERIES=200 FILL_IDLE=0s ZK_HEAP=-Xmx512m
else
  WARMUP=${WARMUP:-10s} DURATION=${DURATION:-20s}
  SWEEP_RATES=${SWEEP_RATES:-"1000 2000 5000 10000 20000 40000 80000"}
  SWEEP_WARMUP=${SWEEP_WARMUP:-3s} SWEEP_DURATION=${SWEEP_DURATION:-10s}
  STORM_SUPERVISORS=${STORM_SUPERVISORS:-270} STORM_WARMUP=${STORM_WARMUP:-5s} STORM_DURATION=${STORM_DURATION:-40s}
  MAX_START=${MAX_START:-270} MAX_LIMIT=${MAX_LIMIT:-16000} MAX_WARMUP=${MAX_WARMUP:-4s} MAX_DURATION=${MAX_DURATION:-20s} MAX_STEPS=${MAX_STEPS:-3}
  FILL_KEYS=${FILL_KEYS:-1000000} LIST_QUERIES=${LIST_QUERIES:-5000} FILL_IDLE=${FILL_IDLE:-130s} ZK_HEAP=${ZK_HEAP:-}
fi
FILL_EXECUTORS=${FILL_EXECUTORS:-4}

for tool in "$BIN/pacemaker" "$BIN/pacemaker-bench"; do
  [ -x "$tool" ] || { echo "bench: $tool missing: run make build" >&2; exit 2; }
done
for tool in redis-server redis-benchmark java gnuplot go; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing: run scripts/install-deps.sh bench" >&2; exit 2; }
done
[ -r "$ZK_JAR" ] || { echo "bench: $ZK_JAR missing: install Debian's zookeeper package" >&2; exit 2; }

# Tens of thousands of simulated workers are as many sockets on each side.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FILES=$(ulimit -n)
# Storm gives every worker its own connection. When this process (and the
# daemon) may not open that many, a supervisor's workers share one.
MAX_WPC=1
if [ $((MAX_LIMIT * 4 + 500)) -gt "$FILES" ]; then MAX_WPC=4; fi
if [ $((MAX_LIMIT * 4 / MAX_WPC + 500)) -gt "$FILES" ]; then MAX_LIMIT=$(((FILES - 500) * MAX_WPC / 4)); fi

TMP=$(mktemp -d /tmp/pacemaker-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$OUT"; fi
mkdir -p "$OUT"
[ -e "$OUT/commands.txt" ] || : >"$OUT/commands.txt"
log() { printf '\n=== %s\n' "$*" >&2; }

# free_port picks a loopback port nothing listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

wait_port() { # port pid what
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench: $3 exited at start" >&2; return 1; }
    sleep 0.1
  done
  echo "bench: $3 not listening on $1 after 60 s" >&2
  return 1
}

stop() { # pid: TERM, wait, forget
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Pacemaker with DIGEST: workers write unauthenticated (as Storm 2.x's do),
# the simulated Nimbus authenticates with the JAAS file. Limits are raised
# for the largest simulated clusters and the million-key fill.
cat >"$TMP/jaas.conf" <<'EOF'
PacemakerDigest {
   username="bench"
   password="bench-secret";
};
EOF
start_pacemaker() { # name [binary]; sets PM_PORT PM_PID
  local name=$1 bin=${2:-$BIN/pacemaker}
  PM_PORT=$(free_port)
  cat >"$TMP/$name.yaml" <<EOF
pacemaker.auth.method: DIGEST
java.security.auth.login.config: $TMP/jaas.conf
pacemaker.max.connections: 1000000
pacemaker.max.connections.per.peer: 1000000
pacemaker.max.keys: 2000000
pacemaker.max.stored.bytes: 17179869184
EOF
  echo "$bin --config $name.yaml --listen 127.0.0.1 --port $PM_PORT --log-level warn" >>"$OUT/commands.txt"
  "$bin" --config "$TMP/$name.yaml" --listen 127.0.0.1 --port "$PM_PORT" --log-level warn 2>"$TMP/$name.log" &
  PM_PID=$!
  PIDS+=("$PM_PID")
  wait_port "$PM_PORT" "$PM_PID" "pacemaker ($name)"
}

start_redis() {
  RD_PORT=$(free_port)
  mkdir -p "$TMP/redis"
  local args=(--port "$RD_PORT" --bind 127.0.0.1 --protected-mode no --save "" --appendonly no --dir "$TMP/redis" --daemonize no)
  echo "redis-server ${args[*]}" | sed 's/--save  /--save "" /' >>"$OUT/commands.txt"
  redis-server "${args[@]}" >"$TMP/redis.log" 2>&1 &
  RD_PID=$!
  PIDS+=("$RD_PID")
  wait_port "$RD_PORT" "$RD_PID" redis-server
}

# ZooKeeper standalone as Debian ships it, default JVM heap, its data dir
# on this machine's disk (forceSync on, as Storm's clusters ran it).
start_zookeeper() {
  ZK_PORT=$(free_port)
  mkdir -p "$TMP/zk/data"
  cat >"$TMP/zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$TMP/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr
EOF
  echo "java $ZK_HEAP -cp $ZK_JAR org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg  # zoo.cfg: $(grep -v dataDir "$TMP/zk/zoo.cfg" | tr '\n' ' ')" >>"$OUT/commands.txt"
  # shellcheck disable=SC2086 # ZK_HEAP is empty or one flag
  java $ZK_HEAP -cp "$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain "$TMP/zk/zoo.cfg" >"$TMP/zk.log" 2>&1 &
  ZK_PID=$!
  PIDS+=("$ZK_PID")
  wait_port "$ZK_PORT" "$ZK_PID" zookeeper
  local reply
  for _ in $(seq 300); do
    reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && echo srvr >&3 && cat <&3) 2>/dev/null || true)
    case $reply in *"Zookeeper version"*) return 0 ;; esac
    sleep 0.2
  done
  echo "bench: zookeeper never started serving" >&2
  return 1
}

# bench NAME ARGS…: one pacemaker-bench run, result in $OUT/NAME.json.
bench() {
  local name=$1
  shift
  echo "pacemaker-bench $* --out $name.json" >>"$OUT/commands.txt"
  "$BIN/pacemaker-bench" "$@" --label "$name" --out "$OUT/$name.json"
}

achieved() { sed -n 's/.*"achieved_per_second": \([0-9.e+]*\).*/\1/p' "$1" | head -1; }

# closed_round N: the key comparison, 64 connections, 4 KiB, 4,000 keys.
closed_round() {
  local n=$1
  log "round $n: closed loop, 64 connections, 4 KiB values, 4,000 keys"
  bench "closed-$n-pacemaker" --servers "127.0.0.1:$PM_PORT" --target pacemaker --mode load --conns 64 --keys 4000 --value-size 4096 \
    --warmup "$WARMUP" --duration "$DURATION" --pid "$PM_PID"
  bench "closed-$n-redis" --servers "127.0.0.1:$RD_PORT" --target redis --mode load --conns 64 --keys 4000 --value-size 4096 \
    --warmup "$WARMUP" --duration "$DURATION" --pid "$RD_PID"
  bench "closed-$n-zookeeper" --servers "127.0.0.1:$ZK_PORT" --target zookeeper --zk-sessions 8 --mode load --conns 64 --keys 4000 --value-size 4096 \
    --warmup "$WARMUP" --duration "$DURATION" --pid "$ZK_PID"
}

[ -s "$OUT/machine.txt" ] || {
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "cpus: $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "virtualization: $(systemd-detect-virt 2>/dev/null || echo unknown)"
  echo "open_files: $FILES per process"
  echo "go: $(go version | cut -d' ' -f3-)"
  echo "pacemaker: $("$BIN/pacemaker" --version 2>&1 | head -1)"
  echo "redis: $(redis-server --version | head -1)"
  echo "zookeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo unknown) (Debian package)"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  echo "# $(date -u '+%H:%M UTC'), BENCH_KEEP=1 BENCH_PHASES=\"${BENCH_PHASES:-}\", load average $(cut -d' ' -f1-3 /proc/loadavg):" >>"$OUT/commands.txt"
fi

# Phases, in order; BENCH_PHASES picks some (e.g. "closed3" re-runs the key
# comparison as a third round, merged into the existing results with
# BENCH_KEEP=1).
PHASES=${BENCH_PHASES:-"closed1 redis-benchmark syscalls sweep storm max fill profile closed2 go-bench"}
want() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

shared_servers() { # redis and ZooKeeper, started once, kept for the phases that use them
  [ -n "${RD_PID:-}" ] || start_redis
  [ -n "${ZK_PID:-}" ] || start_zookeeper
}

for phase in $PHASES; do
  case $phase in
    closed[0-9]*)
      n=${phase#closed}
      shared_servers
      start_pacemaker "round$n"
      closed_round "$n"
      stop "$PM_PID"
      ;;

    redis-benchmark)
      shared_servers
      log "redis-benchmark cross-check"
      {
        cpu0=$(awk '{print $14+$15}' "/proc/$RD_PID/stat")
        n=$([ "${BENCH_QUICK:-0}" = 1 ] && echo 50000 || echo 1000000)
        echo "\$ redis-benchmark -p PORT -c 64 -n $n -d 4096 -r 4000 -t set -q"
        redis-benchmark -h 127.0.0.1 -p "$RD_PORT" -c 64 -n "$n" -d 4096 -r 4000 -t set -q 2>&1 | tr '\r' '\n' | grep -v '^$' | tail -1
        cpu1=$(awk '{print $14+$15}' "/proc/$RD_PID/stat")
        awk -v a="$cpu0" -v b="$cpu1" -v n="$n" 'BEGIN { s=(b-a)/100; printf "redis-server CPU: %.2f s for %d SETs = %.0f SETs per CPU-second\n", s, n, (s>0 ? n/s : 0) }'
      } >"$OUT/redis-benchmark.txt"
      echo "redis-benchmark -h 127.0.0.1 -p $RD_PORT -c 64 -n 1000000 -d 4096 -r 4000 -t set -q" >>"$OUT/commands.txt"
      cat "$OUT/redis-benchmark.txt" >&2
      ;;

    syscalls)
      # System calls per request, counted by the kernel (perf's syscall
      # tracepoints) while each server carries the closed-loop load.
      if ! command -v perf >/dev/null; then
        echo "bench: perf missing (Debian package linux-perf): no system call counts" >&2
        continue
      fi
      shared_servers
      start_pacemaker syscalls
      log "system calls per request"
      events=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep
      {
        printf '%-10s %9s %8s %8s %8s %8s %8s %8s\n' server answers read write epoll futex nanosleep total
        for target in pacemaker redis; do
          case $target in
            pacemaker) port=$PM_PORT pid=$PM_PID ;;
            redis) port=$RD_PORT pid=$RD_PID ;;
          esac
          "$BIN/pacemaker-bench" --servers "127.0.0.1:$port" --target "$target" --mode load --conns 64 --keys 4000 --value-size 4096 \
            --warmup 2s --duration 6s --pid "$pid" --json >"$TMP/sys-$target.json" 2>/dev/null &
          gen=$!
          sleep 3
          perf stat -x, -e "$events" -p "$pid" -- sleep 4 2>"$TMP/perf-$target.txt" || true
          wait "$gen"
          # One request in flight per connection: every answer is one write.
          awk -F, -v t="$target" '
            /sys_enter_read/ {rd=$1} /sys_enter_write/ {wr=$1} /epoll/ {ep+=$1} /futex/ {fx=$1} /nanosleep/ {ns=$1}
            END { n=wr; if (n<1) n=1; printf "%-10s %9.0f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", t, n, rd/n, wr/n, ep/n, fx/n, ns/n, (rd+wr+ep+fx+ns)/n }' "$TMP/perf-$target.txt"
        done
      } | tee "$OUT/syscalls.txt" >&2
      echo "perf stat -e $events -p PID -- sleep 4   # during a 64-connection closed-loop run of each server" >>"$OUT/commands.txt"
      stop "$PM_PID"
      ;;

    sweep)
      shared_servers
      start_pacemaker sweep
      log "open-loop sweep: latency against offered load"
      for target in pacemaker redis zookeeper; do
        case $target in
          pacemaker) port=$PM_PORT pid=$PM_PID extra=() ;;
          redis) port=$RD_PORT pid=$RD_PID extra=() ;;
          zookeeper) port=$ZK_PORT pid=$ZK_PID extra=(--zk-sessions 8) ;;
        esac
        for rate in $SWEEP_RATES; do
          bench "sweep-$target-$rate" --servers "127.0.0.1:$port" --target "$target" "${extra[@]}" --mode load --conns 64 --keys 4000 \
            --value-size 4096 --rate "$rate" --warmup "$SWEEP_WARMUP" --duration "$SWEEP_DURATION" --pid "$pid" | sed -n '1,3p'
          got=$(achieved "$OUT/sweep-$target-$rate.json")
          if awk -v g="$got" -v r="$rate" 'BEGIN { exit !(g < 0.9 * r) }'; then
            echo "bench: $target saturated at $rate/s offered ($got/s achieved); higher rates skipped" >&2
            break
          fi
        done
      done
      stop "$PM_PID"
      ;;

    storm)
      shared_servers
      start_pacemaker storm
      log "a ${STORM_SUPERVISORS}-supervisor Storm cluster"
      bench storm270-pacemaker --servers "127.0.0.1:$PM_PORT" --auth DIGEST --jaas "$TMP/jaas.conf" --target pacemaker --mode storm \
        --supervisors "$STORM_SUPERVISORS" --warmup "$STORM_WARMUP" --duration "$STORM_DURATION" --pid "$PM_PID"
      bench storm270-zookeeper --servers "127.0.0.1:$ZK_PORT" --target zookeeper --mode storm \
        --supervisors "$STORM_SUPERVISORS" --warmup "$STORM_WARMUP" --duration "$STORM_DURATION" --pid "$ZK_PID"
      stop "$PM_PID"
      ;;

    max)
      start_pacemaker max
      log "the largest cluster within one core"
      bench max-pacemaker --servers "127.0.0.1:$PM_PORT" --auth DIGEST --jaas "$TMP/jaas.conf" --target pacemaker --mode max \
        --max-cpu 100 --max-start "$MAX_START" --max-limit "$MAX_LIMIT" --max-steps "$MAX_STEPS" --workers-per-conn "$MAX_WPC" \
        --warmup "$MAX_WARMUP" --duration "$MAX_DURATION" --pid "$PM_PID"
      stop "$PM_PID"
      ;;

    fill)
      start_pacemaker fill
      log "$FILL_KEYS keys stored"
      bench fill-pacemaker --servers "127.0.0.1:$PM_PORT" --auth DIGEST --jaas "$TMP/jaas.conf" --target pacemaker --mode fill \
        --keys "$FILL_KEYS" --topology-workers 1000 --executors "$FILL_EXECUTORS" --list-queries "$LIST_QUERIES" --idle "$FILL_IDLE" --pid "$PM_PID"
      stop "$PM_PID"
      ;;

    profile)
      log "profiles of the closed-loop run"
      go build -o "$TMP/pprof-pacemaker" "$ROOT/bench/pprof-pacemaker"
      PACEMAKER_CPUPROFILE="$TMP/cpu.pprof" PACEMAKER_ALLOCPROFILE="$TMP/allocs.pprof" start_pacemaker profile "$TMP/pprof-pacemaker"
      bench profile-pacemaker --servers "127.0.0.1:$PM_PORT" --target pacemaker --mode load --conns 64 --keys 4000 --value-size 4096 \
        --warmup 2s --duration "$DURATION" --pid "$PM_PID" | sed -n '1,4p'
      stop "$PM_PID"
      go tool pprof -top -nodecount=30 "$TMP/pprof-pacemaker" "$TMP/cpu.pprof" >"$OUT/profile-cpu.txt" 2>/dev/null || true
      go tool pprof -top -nodecount=20 -sample_index=alloc_space "$TMP/pprof-pacemaker" "$TMP/allocs.pprof" >"$OUT/profile-allocs.txt" 2>/dev/null || true
      cp "$TMP/cpu.pprof" "$TMP/allocs.pprof" "$TMP/pprof-pacemaker" "$OUT/" 2>/dev/null || true
      # Profiling slows the server: keep this run's figures out of the tables.
      mv "$OUT/profile-pacemaker.json" "$OUT/profile-pacemaker.json.txt"
      ;;

    go-bench)
      log "Go micro-benchmarks"
      echo "go test -run '^\$' -bench 'SendPulse4KiB|GetPulse|Rewrite|Children|DecodeSendPulse|AppendFrameGetAllNodes' -benchmem ./internal/server ./internal/store ./internal/wire" >>"$OUT/commands.txt"
      (cd "$ROOT" && go test -run '^$' -bench 'SendPulse4KiB|GetPulse|Rewrite|Children|DecodeSendPulse|AppendFrameGetAllNodes' -benchmem \
        ./internal/server ./internal/store ./internal/wire 2>&1 | grep -E '^(Benchmark|ok|goos|cpu)') | tee "$OUT/go-bench.txt" >&2
      ;;

    *)
      echo "bench: unknown phase $phase" >&2
      exit 2
      ;;
  esac
done
[ -n "${RD_PID:-}" ] && stop "$RD_PID"
[ -n "${ZK_PID:-}" ] && stop "$ZK_PID"

sed -i '/^loadavg_end:/d' "$OUT/machine.txt"
echo "loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
log "writing $DOC"
(cd "$ROOT" && go run ./bench/report -in "$OUT" -out "$DOC" -plot "$PLOT" -analysis "$ANALYSIS")
gnuplot "$OUT/sweep.gp"
sed -n '/^## Targets/,/^## Side/p' "$DOC" | sed '$d'
sed -n '/^## Side by side/,/^## Latency/p' "$DOC" | sed '$d'
echo "bench: wrote $DOC and $PLOT; raw results in $OUT" >&2
