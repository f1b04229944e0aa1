#!/usr/bin/env bash
# `make test-vagrant`: boots the local test bed for real and tests it
# (vagrant/README.md, "Test in Vagrant"):
#   1. libvirt: virtlogd and libvirtd started if none runs (by pid when
#      systemd is not PID 1), with user/group root in qemu.conf for the run;
#      a storage pool in .cache/vagrant/pool
#   2. the Debian 12 box (vagrant/box/build.sh; skipped when up to date); the
#      bed's private network, and with PACEMAKER_TESTBED_SOURCE=repo dist/repo
#      served on the host's address there (192.168.56.1:8080)
#   3. `vagrant up --no-parallel` with PACEMAKER_TESTBED=local: pm1, nimbus1,
#      sup1 boot one after another on qemu TCG, then the Ansible provisioner
#      runs ansible/site.yml on all three
#   4. vagrant/check.sh (ansible/verify.yml)
#   5. a Storm-shaped load from sup1 to pm1 (the load generator, $VAGRANT_BENCH)
#      with `systemctl restart pacemaker` on pm1 half-way: no request may
#      fail, no connection be refused, and every heartbeat must still be there
#   6. `vagrant destroy -f`, and whatever 1 and 2 started is stopped and
#      restored (daemons, networks, qemu.conf, IP forwarding), on failure too.
# Prints how long each step took and the qemu processes' memory.
# Skips (exit 0, saying why) only when it cannot run here at all: not root,
# no /dev/net/tun, or tools missing after `scripts/install-deps.sh vagrant`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${VAGRANT_BOX_CACHE:-$repo/.cache/vagrant}
run=$cache/run
export VAGRANT_HOME=${VAGRANT_HOME:-$cache/home}
# Vagrant's state apart from vagrant/.vagrant, a user's own bed.
export VAGRANT_DOTFILE_PATH=$cache/dot
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1 VAGRANT_DEFAULT_PROVIDER=libvirt
export LIBVIRT_DEFAULT_URI=qemu:///system
export PACEMAKER_TESTBED=local
export PACEMAKER_TESTBED_SOURCE=${PACEMAKER_TESTBED_SOURCE:-file}
export PACEMAKER_TESTBED_POOL=pacemaker-testbed
export PACEMAKER_TESTBED_CONSOLE_DIR=$run
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
# The load generator: pacemakerctl's bench command, or pacemaker-bench.
read -r -a bench_cmd <<<"${VAGRANT_BENCH:-pacemakerctl bench}"
# The load: a small Storm cluster (workers write every period, Nimbus reads
# them all every nimbus period), the restart half-way through the window.
load_supervisors=${LOAD_SUPERVISORS:-25}
load_workers=${LOAD_WORKERS:-4}
load_warmup=${LOAD_WARMUP:-10}
load_duration=${LOAD_DURATION:-40}
pm1=192.168.56.11:6699
# The bed's private network (ansible/inventory/testbed) and the host on it.
testbed_net=pacemaker-testbed
testbed_host=192.168.56.1
repo_port=8080

log() { printf 'test-vagrant: %s\n' "$*"; }
skip() { printf '\n*** SKIP: make test-vagrant: %s ***\n\n' "$*"; exit 0; }
fail() { printf '\ntest-vagrant: FAIL: %s\n' "$*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# --- Can it run here at all? -------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (libvirtd, loop devices for the box build)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun: qemu cannot attach VMs to libvirt's networks"
missing=()
for tool in vagrant virsh libvirtd virtlogd qemu-system-x86_64 qemu-img ansible-playbook ssh scp python3 debootstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || skip "missing ${missing[*]} (bash scripts/install-deps.sh vagrant installs them)"
vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt || skip "Vagrant has no libvirt provider (Debian package vagrant-libvirt)"
bench_bin=$repo/bin/${bench_cmd[0]}
[ -x "$bench_bin" ] || fail "$bench_bin is missing: run 'make build' first"

mkdir -p "$run" "$cache/pool"
rm -f "$run"/*.log "$run"/*.json "$run"/ssh-config
timings=()
step() { timings+=("$(printf '%-34s %7s s' "$1" "$2")"); }
summary() {
  echo
  echo "=== make test-vagrant: summary ==="
  printf '  %s\n' "${timings[@]}"
  [ -s "$run/rss.txt" ] && { echo "  qemu memory (VmRSS now / VmHWM peak):"; sed 's/^/    /' "$run/rss.txt"; }
  [ -s "$run/load.txt" ] && { echo "  load:"; sed 's/^/    /' "$run/load.txt"; }
  echo "  logs: $run"
}

# --- Clean-up: always ---------------------------------------------------------
started_pids=()   # daemons this run started, stopped in reverse order
started_units=()  # the same on a systemd host
nets_before=""
pools_before=""
qemu_conf_marked=false
bed_up=false
http_pid=""
readonly conf_begin="# BEGIN make test-vagrant (removed when it ends)"
readonly conf_end="# END make test-vagrant"

# The qemu processes' memory now and at their peak, before they go.
measure_rss() {
  local pid name
  for pid in $(pgrep -f 'qemu-system-x86_64.*-name guest=vagrant_'); do
    name=$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*-name guest=vagrant_\([^, ]*\).*/\1/p')
    awk -v n="$name" '/^VmRSS|^VmHWM/ { v[$1] = $2 } END { printf "%-10s %5.0f MiB / %5.0f MiB\n", n, v["VmRSS:"] / 1024, v["VmHWM:"] / 1024 }' "/proc/$pid/status"
  done >"$run/rss.txt"
}
# libvirt's network driver turns on IP forwarding and leaves its (empty)
# LIBVIRT_* chains behind when it stops; a host that had neither gets them removed.
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
libvirt_chains_before=$( { iptables -S; iptables -t nat -S; } 2>/dev/null | grep -c 'LIBVIRT_' || true)
restore_host_net() {
  local cmd table rule chain
  echo "$ip_forward_before" >/proc/sys/net/ipv4/ip_forward
  [ "$libvirt_chains_before" -eq 0 ] || return 0
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      "$cmd" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ -j LIBVIRT_' | while read -r -a rule; do
        "$cmd" -t "$table" -D "${rule[@]:1}"
      done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^LIBVIRT_/ { print $2 }'); do
        "$cmd" -t "$table" -F "$chain" && "$cmd" -t "$table" -X "$chain"
      done
    done
  done
}
unmark_qemu_conf() {
  sed -i "/^$conf_begin\$/,/^$conf_end\$/d" /etc/libvirt/qemu.conf
}
cleanup() {
  local rc=$? t
  set +e
  trap - EXIT INT TERM
  [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
  measure_rss
  if $bed_up || [ -d "$VAGRANT_DOTFILE_PATH/machines" ]; then
    t=$(now)
    (cd "$repo/vagrant" && timeout 600 vagrant destroy -f) >"$run/destroy.log" 2>&1 ||
      { log "vagrant destroy failed:"; tail -n 20 "$run/destroy.log"; rc=1; }
    step "vagrant destroy -f" "$(since "$t")"
  fi
  if virsh version >/dev/null 2>&1; then
    # Whatever vagrant destroy left behind, so that no dnsmasq or qemu stays.
    for d in $(virsh list --all --name | grep '^vagrant_' ); do
      virsh destroy "$d" >/dev/null 2>&1; virsh undefine "$d" --remove-all-storage >/dev/null 2>&1
    done
    for n in $(virsh net-list --all --name); do
      [ "$n" != "$testbed_net" ] && grep -qxF "$n" <<<"$nets_before" && continue
      virsh net-destroy "$n" >/dev/null 2>&1; virsh net-undefine "$n" >/dev/null 2>&1
    done
    for p in $(virsh pool-list --all --name); do
      grep -qxF "$p" <<<"$pools_before" && continue
      virsh pool-destroy "$p" >/dev/null 2>&1; virsh pool-undefine "$p" >/dev/null 2>&1
    done
  fi
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${started_pids[i]}"
  done
  for ((i = ${#started_units[@]} - 1; i >= 0; i--)); do
    systemctl stop "${started_units[i]}"
  done
  $qemu_conf_marked && unmark_qemu_conf
  [ ${#started_pids[@]} -gt 0 ] && restore_host_net
  summary
  if [ "$rc" -eq 0 ]; then log "PASS"; else log "FAIL (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() { # stop_pid PIDFILE-or-PID: TERM, then KILL after 15 s
  local pid=$1
  [ -f "$pid" ] && pid=$(cat "$pid")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null
}

# --- 1. libvirt ---------------------------------------------------------------
t=$(now)
if pgrep -x libvirtd >/dev/null; then
  log "libvirtd runs already: using it as it is (qemu.conf unchanged; defines may be slow when /dev/kvm is unusable)"
else
  # With /dev/kvm present but unusable by libvirt's qemu user, libvirt 9.0
  # re-probes qemu on every define (~4 s each, many times); as root it does not.
  unmark_qemu_conf
  printf '%s\nuser = "root"\ngroup = "root"\n%s\n' "$conf_begin" "$conf_end" >>/etc/libvirt/qemu.conf
  qemu_conf_marked=true
  if [ -d /run/systemd/system ]; then
    for u in virtlogd.service libvirtd.service; do
      systemctl is-active --quiet "$u" && continue
      systemctl start "$u" || fail "systemctl start $u"
      started_units+=("$u")
    done
  else
    if ! pgrep -x virtlogd >/dev/null; then
      virtlogd -d -p "$run/virtlogd.pid" || fail "virtlogd -d"
      started_pids+=("$run/virtlogd.pid")
    fi
    libvirtd -d -p "$run/libvirtd.pid" || fail "libvirtd -d"
    started_pids+=("$run/libvirtd.pid")
  fi
fi
for _ in $(seq 40); do virsh version >/dev/null 2>&1 && break; sleep 0.5; done
virsh version >/dev/null 2>&1 || fail "libvirtd does not answer on $LIBVIRT_DEFAULT_URI"
nets_before=$(virsh net-list --all --name)
pools_before=$(virsh pool-list --all --name)
if ! virsh pool-info "$PACEMAKER_TESTBED_POOL" >/dev/null 2>&1; then
  # Transient: gone with libvirtd; the box image in it stays for the next run.
  virsh pool-create-as "$PACEMAKER_TESTBED_POOL" dir --target "$cache/pool" >/dev/null || fail "virsh pool-create-as"
fi
step "libvirt up" "$(since "$t")"

# --- 2. The box ----------------------------------------------------------------
t=$(now)
bash "$repo/vagrant/box/build.sh" 2>&1 | sed 's/^/  /'
# A rebuilt box removed its old image from the pool's directory.
virsh pool-refresh "$PACEMAKER_TESTBED_POOL" >/dev/null || fail "virsh pool-refresh"
step "box (make vagrant-box)" "$(since "$t")"

# --- The private network, and the repository served on it --------------------
# Made here rather than by vagrant-libvirt (which takes a network that has the
# address) so that the host's address on it exists before `vagrant up`.
# Isolated: the VMs reach the outside through the management network.
virsh net-info "$testbed_net" >/dev/null 2>&1 && { virsh net-destroy "$testbed_net"; virsh net-undefine "$testbed_net"; } >/dev/null 2>&1
virsh net-define /dev/stdin >/dev/null <<EOF || fail "virsh net-define $testbed_net"
<network>
  <name>$testbed_net</name>
  <bridge name="virbr-pmtb" stp="off"/>
  <ip address="$testbed_host" netmask="255.255.255.0"/>
</network>
EOF
virsh net-start "$testbed_net" >/dev/null || fail "virsh net-start $testbed_net"
if [ "$PACEMAKER_TESTBED_SOURCE" = repo ]; then
  repo_dir=$repo/dist/repo
  if [ ! -d "$repo_dir/apt" ] || [ ! -f "$repo_dir/storm-pacemaker.gpg" ]; then
    fail "$repo_dir has no apt repository and key: run 'make repo'"
  fi
  # Only on the bed's bridge: nothing outside the host reaches it.
  python3 -m http.server --bind "$testbed_host" --directory "$repo_dir" "$repo_port" >"$run/http.log" 2>&1 &
  http_pid=$!
  export PACEMAKER_TESTBED_REPO_URL=http://$testbed_host:$repo_port
  for _ in $(seq 50); do python3 -c "import urllib.request as u; u.urlopen('$PACEMAKER_TESTBED_REPO_URL/storm-pacemaker.gpg', timeout=2)" 2>/dev/null && break; sleep 0.2; done
  kill -0 "$http_pid" 2>/dev/null || { cat "$run/http.log"; fail "the repository's HTTP server did not start"; }
  log "repository $repo_dir served at $PACEMAKER_TESTBED_REPO_URL"
fi

# --- 3. vagrant up -------------------------------------------------------------
# Each line stamped with the seconds since the start, to split boot from provisioning.
stamp_lines() { local start=$1 line; while IFS= read -r line; do printf '%7.1f %s\n' "$(since "$start")" "$line"; done; }
log "vagrant up (profile local, source $PACEMAKER_TESTBED_SOURCE): log in $run/vagrant-up.log"
bed_up=true
t=$(now)
rc=0
(cd "$repo/vagrant" && timeout 2400 vagrant up --no-parallel --provider=libvirt) 2>&1 | stamp_lines "$t" >"$run/vagrant-up.log" || rc=$?
up_total=$(since "$t")
grep -E 'Machine booted and ready|Running provisioner|PLAY RECAP|ok=|failed=' "$run/vagrant-up.log" | sed 's/^/  /'
if [ "$rc" -ne 0 ]; then
  tail -n 40 "$run/vagrant-up.log"
  for c in "$run"/console-*.log; do [ -f "$c" ] && { echo "--- $c (tail)"; tail -n 15 "$c"; }; done
  fail "vagrant up (exit $rc)"
fi
booted=$(awk '/Running provisioner: ansible/ { print $1; exit }' "$run/vagrant-up.log")
[ -n "$booted" ] || fail "vagrant up did not run the Ansible provisioner"
for m in pm1 nimbus1 sup1; do
  at=$(awk -v m="$m:" '$2 == "==>" && $3 == m && /Machine booted and ready/ { print $1; exit }' "$run/vagrant-up.log")
  step "  $m booted (since start)" "${at:-?}"
done
step "vagrant up: boot 3 VMs, one by one" "$booted"
step "vagrant up: provision (site.yml)" "$(awk -v a="$booted" -v b="$up_total" 'BEGIN { printf "%.1f", b - a }')"

# --- 4. check.sh -----------------------------------------------------------------
t=$(now)
"$repo/vagrant/check.sh" >"$run/check.log" 2>&1 || { cat "$run/check.log"; fail "vagrant/check.sh"; }
grep -E '^(PLAY|TASK|ok:|changed:|fatal:|failed:)|"msg"|RECAP|ok=' "$run/check.log" | sed 's/^/  /'
step "vagrant/check.sh (verify.yml)" "$(since "$t")"

# --- 5. Load across the restart ---------------------------------------------------
t=$(now)
(cd "$repo/vagrant" && vagrant ssh-config) >"$run/ssh-config" 2>/dev/null || fail "vagrant ssh-config"
vssh() { ssh -F "$run/ssh-config" -o LogLevel=ERROR -o BatchMode=yes "$@"; }
scp -q -F "$run/ssh-config" -o LogLevel=ERROR "$bench_bin" sup1:pm-bench || fail "copy $bench_bin to sup1"
# Nimbus reads with DIGEST, as pm1's own JAAS file allows.
vssh pm1 sudo cat /etc/pacemaker/jaas.conf | vssh sup1 'umask 077; cat >pm-bench-jaas.conf' || fail "JAAS file to sup1"
# A heartbeat written before the restart must be there after it.
vssh pm1 "echo kept-across-restart | pacemakerctl --servers $pm1 send /testbed-load/marker -" || fail "write the marker"
pid_before=$(vssh pm1 systemctl show -p MainPID --value pacemaker.service)
bench_args=(--servers "$pm1" --auth DIGEST --jaas pm-bench-jaas.conf "${bench_cmd[@]:1}"
  --mode storm --supervisors "$load_supervisors" --workers "$load_workers" --period 3s --nimbus-period 10s
  --warmup "${load_warmup}s" --duration "${load_duration}s" --label testbed-restart --json --out pm-bench.json)
log "load: sup1 -> pm1, ${bench_cmd[*]} ${bench_args[*]:6}"
vssh sup1 "./pm-bench ${bench_args[*]}" >"$run/bench-stdout.json" 2>"$run/bench.log" &
bench=$!
sleep $((load_warmup + load_duration / 2))
r=$(now)
vssh pm1 sudo systemctl restart pacemaker.service || fail "systemctl restart pacemaker on pm1"
restart_took=$(since "$r")
pid_after=$(vssh pm1 systemctl show -p MainPID --value pacemaker.service)
bench_rc=0
wait "$bench" || bench_rc=$?
scp -q -F "$run/ssh-config" -o LogLevel=ERROR sup1:pm-bench.json "$run/bench.json" ||
  { cat "$run/bench.log"; fail "the load generator wrote no result (exit $bench_rc)"; }
marker=$(vssh pm1 "sudo pacemakerctl --servers $pm1 --auth DIGEST --jaas /etc/pacemaker/jaas.conf get /testbed-load/marker" 2>&1 || true)
vssh sup1 'rm -f pm-bench pm-bench-jaas.conf pm-bench.json'
step "load (${load_warmup}+${load_duration} s, restart half-way)" "$(since "$t")"
python3 - "$run/bench.json" "$pid_before" "$pid_after" "$restart_took" "$marker" "$((load_supervisors * load_workers))" >"$run/load.txt" <<'EOF' || load_ok=false
import json, sys
path, pid_before, pid_after, restart_took, marker, workers = sys.argv[1:]
r = json.load(open(path))
w, n = r["writes"], r.get("nimbus") or {}
print(f"{r['params']['supervisors']} supervisors x {r['params']['workers_per_supervisor']} workers, "
      f"heartbeat {r['params']['value_bytes']} B, {r['params']['duration_seconds']:.0f} s window")
print(f"writes: {w['completed']} done of {w.get('scheduled', 0)} scheduled, {w['achieved_per_second']:.1f}/s, "
      f"errors {w['errors']}, missed {w.get('missed', 0)}, refused/dial errors {w.get('dial_errors', 0)}, reconnects {w.get('reconnects', 0)}")
lat = w["latency"]
print(f"write latency ms: p50 {lat['p50_ms']:.1f}  p99 {lat['p99_ms']:.1f}  max {lat['max_ms']:.1f}")
if n:
    print(f"nimbus: {n['cycles']} cycles, last saw {n['workers_found']} of {workers} workers, missing {n['workers_missing']}, "
          f"get errors {n['get_pulse']['errors']}, decode errors {n['decode_errors']}")
print(f"restart: MainPID {pid_before} -> {pid_after}, systemctl restart took {restart_took} s; marker after it: {marker!r}")
bad = []
if w["errors"] or w.get("dial_errors", 0):
    bad.append(f"writes failed ({w['errors']} errors, {w.get('dial_errors', 0)} refused): {w.get('error_samples')}")
if w.get("missed", 0):
    bad.append(f"{w['missed']} writes missed their schedule")
if not n or n["workers_missing"] or n["workers_found"] != int(workers) or n["get_pulse"]["errors"] or n["list_topology"]["errors"]:
    bad.append("Nimbus did not read every worker's heartbeat after the restart")
if pid_before == pid_after or pid_after in ("", "0"):
    bad.append(f"pacemaker did not restart (MainPID {pid_before} -> {pid_after})")
if "kept-across-restart" not in marker:
    bad.append(f"the heartbeat written before the restart is gone: {marker!r}")
for b in bad:
    print("FAIL: " + b)
sys.exit(1 if bad else 0)
EOF
sed 's/^/  /' "$run/load.txt"
[ "${load_ok:-true}" = true ] || { tail -n 20 "$run/bench.log"; fail "load across the restart"; }
[ "$bench_rc" -eq 0 ] || { tail -n 20 "$run/bench.log"; fail "the load generator exited $bench_rc"; }
