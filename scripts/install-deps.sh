#!/usr/bin/env bash
# Installs the Debian packages a target needs, quietly and only when missing,
# so `make test` works on a fresh Debian/Ubuntu machine (run as root).
set -euo pipefail

# Packages by purpose. Keep them Debian 12 names.
test_pkgs=(
  openjdk-17-jdk-headless                      # javac for the JDK interop programs
  libthrift-java thrift-compiler               # Java interop test (HBMessage via Thrift 0.16)
  krb5-kdc krb5-admin-server krb5-user         # KERBEROS interop against a real MIT KDC
  systemd systemd-container debootstrap        # socket activation, booted-systemd tests
  iproute2
  lintian rpm rpmlint                          # package checks
  gnupg reprepro createrepo-c dnf              # make repo: signing, apt and dnf repositories, dnf's checks
  ansible ansible-lint yamllint python3-yaml   # playbook checks and the booted playbook run
  vagrant vagrant-libvirt                      # vagrant validate/status of the test bed
  shellcheck cpio
  procps man-db                                # kill(1) for the unit tests; man(1) renders the man pages
  redis-server zookeeper                       # the load generator's redis and ZooKeeper modes
  prometheus                                   # promtool and a real Prometheus for monitoring/ (test/monitoring)
)
bench_pkgs=(redis-server zookeeper hyperfine gnuplot-nox linux-perf)   # linux-perf: system calls per answer
# make vagrant-box / test-vagrant: the test bed's VMs on libvirt + qemu (TCG).
vagrant_pkgs=(
  vagrant vagrant-libvirt ansible openssh-client python3
  libvirt-daemon libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils dnsmasq-base iptables   # VMs and their NAT networks
  debootstrap fdisk e2fsprogs                        # the box: root, MBR, ext4
  gnupg reprepro createrepo-c rpm                    # make repo, the bed's package source
)

case "${1:-test}" in
  test) want=("${test_pkgs[@]}") ;;
  bench) want=("${bench_pkgs[@]}") ;;
  vagrant) want=("${vagrant_pkgs[@]}") ;;
  *) echo "usage: $0 test|bench|vagrant" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root (or install them) to test everything" >&2
  exit 0 # the tests that need them skip, loudly
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
