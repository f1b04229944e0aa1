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
# redis-benchmark, java + /usr/share/java/zookeeper.jar, gnuplot, go, perf
# (scripts/install-deps.sh bench installs them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/bin}
OUT=${BENCH_OUT:-$ROOT/bench/out}
DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
PLOT=${BENCH_PLOT:-$(dirname "$DOC")/BENCHMARKS-latency.png}
ANALYSIS=${BENCH_ANALYSIS:-$ROOT/bench/analysis.md}
# The README's performance lines (between its bench:begin/end markers) are
# rewritten from a full run; BENCH_README= (empty) leaves it alone.
README_FILE=${BENCH_README-$ROOT/README.md}
if [ "${BENCH_QUICK:-0}" = 1 ]; then README_FILE=${BENCH_README-}; fi
ZK_JAR=/usr/share/java/zookeeper.jar

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  WARMUP=2s DURATION=4s
  SWEEP_RATES=${SWEEP_RATES:-"4000 40000"} SWEEP_WARMUP=1s SWEEP_DURATION=3s
  STORM_SUPERVISORS=${STORM_SUPERVISORS:-50} STORM_WARMUP=4s STORM_DURATION=11s
  MAX_START=50 MAX_LIMIT=100 MAX_WARMUP=3s MAX_DURATION=5s MAX_STEPS=1
  FILL_KEYS=20000 LIST_QUERIES=200 FILL_IDLE=0s ZK_HEAP=-Xmx512m
  IDLE_CONNS=${IDLE_CONNS:-2000} IDLE_SETTLE=5s
else
  WARMUP=${WARMUP:-10s} DURATION=${DURATION:-20s}
  SWEEP_RATES=${SWEEP_RATES:-"1000 2000 5000 10000 20000 40000 80000"}
  SWEEP_WARMUP=${SWEEP_WARMUP:-3s} SWEEP_DURATION=${SWEEP_DURATION:-10s}
  STORM_SUPERVISORS=${STORM_SUPERVISORS:-270} STORM_WARMUP=${STORM_WARMUP:-5s} STORM_DURATION=${STORM_DURATION:-40s}
  MAX_START=${MAX_START:-270} MAX_LIMIT=${MAX_LIMIT:-16000} MAX_WARMUP=${MAX_WARMUP:-4s} MAX_DURATION=${MAX_DURATION:-20s} MAX_STEPS=${MAX_STEPS:-3}
  FILL_KEYS=${FILL_KEYS:-1000000} LIST_QUERIES=${LIST_QUERIES:-5000} FILL_IDLE=${FILL_IDLE:-130s} ZK_HEAP=${ZK_HEAP:-}
  IDLE_CONNS=${IDLE_CONNS:-20000} IDLE_SETTLE=${IDLE_SETTLE:-125s}
fi
FILL_EXECUTORS=${FILL_EXECUTORS:-4}
# The offered rate at which the issue compares p99 with redis's (the sweep
# must include it; the latency2 phase repeats it).
LATENCY_RATE=40000

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
# Storm gives every worker its own connection, and so does the search. The
# server and the generator each hold one descriptor per connection, so the
# open-file limit (20,000 in this container, which root cannot raise) caps
# the cluster at (FILES - 500) / 4 supervisors; beyond, the report
# extrapolates the server's CPU share.
if [ $((MAX_LIMIT * 4 + 500)) -gt "$FILES" ]; then MAX_LIMIT=$(((FILES - 500) / 4)); fi
# The idle connections: as many as fit under the same limit.
if [ $((IDLE_CONNS + 1000)) -gt "$FILES" ]; then IDLE_CONNS=$((FILES - 1000)); fi

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

# free_port picks a loopback port nothing listens on, below the ephemeral
# range: a client socket's TIME_WAIT on a port blocks a server's bind there
# (SO_REUSEADDR helps only when both sockets set it), and the generator
# leaves thousands.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$EPHEMERAL_LOW" -gt 12000 ] || EPHEMERAL_LOW=32768
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
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
  wait_port "$PM_PORT" "$PM_PID" "pacemaker ($name)" || { tail -20 "$TMP/$name.log" >&2; return 1; }
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
PHASES=${BENCH_PHASES:-"closed1 paired redis-benchmark syscalls sweep storm max idle fill profile closed2 latency2 go-bench"}
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

    paired)
      # The closed-loop comparison again with both servers measured at the
      # same moment, each with its own generator: whatever else this
      # machine's neighbours do then weighs on both alike. (The closed
      # rounds measure one server after the other, and redis's CPU per
      # write has moved by half between two of them.)
      shared_servers
      start_pacemaker paired
      for n in $(seq "${PAIRED_ROUNDS:-3}"); do
        log "paired round $n: pacemaker and redis at the same moment, 64 connections each, 4 KiB values"
        gens=()
        for target in pacemaker redis; do
          case $target in
            pacemaker) port=$PM_PORT pid=$PM_PID ;;
            redis) port=$RD_PORT pid=$RD_PID ;;
          esac
          bench "paired-$n-$target" --servers "127.0.0.1:$port" --target "$target" --mode load --conns 64 --keys 4000 --value-size 4096 \
            --warmup "$WARMUP" --duration "$DURATION" --pid "$pid" >"$TMP/paired-$target.log" 2>&1 &
          gens+=($!)
        done
        for g in "${gens[@]}"; do wait "$g" || { cat "$TMP"/paired-*.log >&2; exit 1; }; done
        grep -h 'writes per CPU-second' "$TMP"/paired-*.log >&2 || true
      done
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
      # System calls per answer, counted by the kernel (perf's syscall
      # tracepoints on the server's threads) for 4 s in the middle of each
      # server's closed-loop run. perf's workload signals the generator as
      # counting begins and ends (SIGUSR1: it prints its answers so far),
      # so the answers are those of exactly the counted interval.
      if ! command -v perf >/dev/null; then
        echo "bench: perf missing (Debian package linux-perf: scripts/install-deps.sh bench): no system call counts" >&2
        continue
      fi
      shared_servers
      start_pacemaker syscalls
      log "system calls per answer"
      events=raw_syscalls:sys_enter
      for sc in read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait epoll_pwait2 epoll_ctl futex nanosleep clock_nanosleep io_uring_enter; do
        [ -d "/sys/kernel/tracing/events/syscalls/sys_enter_$sc" ] || [ -d "/sys/kernel/debug/tracing/events/syscalls/sys_enter_$sc" ] || continue
        events+=",syscalls:sys_enter_$sc"
      done
      for target in pacemaker redis; do
        case $target in
          pacemaker) port=$PM_PORT pid=$PM_PID ;;
          redis) port=$RD_PORT pid=$RD_PID ;;
        esac
        args=(--servers "127.0.0.1:$port" --target "$target" --mode load --conns 64 --keys 4000 --value-size 4096 --warmup 2s --duration 8s --pid "$pid")
        echo "pacemaker-bench ${args[*]} --out syscalls-$target.json" >>"$OUT/commands.txt"
        # Started directly (not through bench()), so $! is the generator itself.
        "$BIN/pacemaker-bench" "${args[@]}" --label "syscalls-$target" --out "$OUT/syscalls-$target.json" >/dev/null 2>"$TMP/syscalls-$target.log" &
        gen=$!
        sleep 3
        perf stat -x, -e "$events" -p "$pid" -- sh -c "kill -USR1 $gen; sleep 4; kill -USR1 $gen" 2>"$OUT/syscalls-$target.perf" || true
        wait "$gen"
        grep '^pacemaker-bench: answered ' "$TMP/syscalls-$target.log" >>"$OUT/syscalls-$target.perf" || true
      done
      echo "perf stat -x, -e $events -p PID -- sh -c 'kill -USR1 GENERATOR; sleep 4; kill -USR1 GENERATOR'   # 3 s into each syscalls-* run above" >>"$OUT/commands.txt"
      stop "$PM_PID"
      ;;

    sweep)
      shared_servers
      start_pacemaker sweep
      log "open-loop sweep: latency against offered load"
      # Rate by rate, every server in turn, so the servers compared at one
      # rate ran minutes apart at most, under the same background load.
      saturated=" "
      for rate in $SWEEP_RATES; do
        for target in pacemaker redis zookeeper; do
          case $saturated in *" $target "*) continue ;; esac
          case $target in
            pacemaker) port=$PM_PORT pid=$PM_PID extra=() ;;
            redis) port=$RD_PORT pid=$RD_PID extra=() ;;
            zookeeper) port=$ZK_PORT pid=$ZK_PID extra=(--zk-sessions 8) ;;
          esac
          bench "sweep-$target-$rate" --servers "127.0.0.1:$port" --target "$target" "${extra[@]}" --mode load --conns 64 --keys 4000 \
            --value-size 4096 --rate "$rate" --warmup "$SWEEP_WARMUP" --duration "$SWEEP_DURATION" --pid "$pid" | sed -n '1,3p'
          got=$(achieved "$OUT/sweep-$target-$rate.json")
          if awk -v g="$got" -v r="$rate" 'BEGIN { exit !(g < 0.9 * r) }'; then
            echo "bench: $target saturated at $rate/s offered ($got/s achieved); higher rates skipped" >&2
            saturated+="$target "
          fi
        done
      done
      stop "$PM_PID"
      ;;

    latency[0-9]*)
      # The issue's latency comparison again, at the end of the run: the
      # open loop at LATENCY_RATE offered, pacemaker then redis, so the
      # report can show the spread between two rounds.
      n=${phase#latency}
      shared_servers
      start_pacemaker "latency$n"
      log "round $n: open loop at $LATENCY_RATE/s, pacemaker and redis"
      for target in pacemaker redis; do
        case $target in
          pacemaker) port=$PM_PORT pid=$PM_PID ;;
          redis) port=$RD_PORT pid=$RD_PID ;;
        esac
        bench "latency-$n-$target" --servers "127.0.0.1:$port" --target "$target" --mode load --conns 64 --keys 4000 \
          --value-size 4096 --rate "$LATENCY_RATE" --warmup "$SWEEP_WARMUP" --duration "$SWEEP_DURATION" --pid "$pid" | sed -n '1,3p'
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
        --max-cpu 100 --max-start "$MAX_START" --max-limit "$MAX_LIMIT" --max-steps "$MAX_STEPS" --workers-per-conn 1 \
        --warmup "$MAX_WARMUP" --duration "$MAX_DURATION" --pid "$PM_PID"
      stop "$PM_PID"
      ;;

    idle)
      # RSS per idle connection that has served one request: a fresh
      # server, then IDLE_CONNS connections (127.1.x.y sources, 100 each)
      # each write one 4 KiB value to one key, read the answer and stay
      # open; VmRSS and RssAnon after IDLE_SETTLE minus before. redis-server
      # (fresh, maxclients raised) the same way for comparison.
      start_pacemaker idle
      log "RSS per idle connection, $IDLE_CONNS connections"
      bench idle-pacemaker --servers "127.0.0.1:$PM_PORT" --target pacemaker --mode idle --conns "$IDLE_CONNS" --value-size 4096 \
        --settle "$IDLE_SETTLE" --pid "$PM_PID"
      stop "$PM_PID"
      IR_PORT=$(free_port)
      mkdir -p "$TMP/redis-idle"
      args=(--port "$IR_PORT" --bind 127.0.0.1 --protected-mode no --save "" --appendonly no --dir "$TMP/redis-idle" --daemonize no --maxclients "$((IDLE_CONNS + 100))")
      echo "redis-server ${args[*]}" | sed 's/--save  /--save "" /' >>"$OUT/commands.txt"
      redis-server "${args[@]}" >"$TMP/redis-idle.log" 2>&1 &
      IR_PID=$!
      PIDS+=("$IR_PID")
      wait_port "$IR_PORT" "$IR_PID" "redis-server (idle)"
      bench idle-redis --servers "127.0.0.1:$IR_PORT" --target redis --mode idle --conns "$IDLE_CONNS" --value-size 4096 \
        --settle 5s --pid "$IR_PID"
      stop "$IR_PID"
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
(cd "$ROOT" && go run ./bench/report -in "$OUT" -out "$DOC" -plot "$PLOT" -analysis "$ANALYSIS" -readme "$README_FILE")
if [ -s "$OUT/sweep.gp" ]; then gnuplot "$OUT/sweep.gp"; fi
sed -n '/^## Targets/,/^## Side/p' "$DOC" | sed '$d'
sed -n '/^## Side by side/,/^## Latency/p' "$DOC" | sed '$d'
echo "bench: wrote $DOC and $PLOT; raw results in $OUT" >&2
