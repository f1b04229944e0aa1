#!/usr/bin/env bash
# Builds the Debian 12 Vagrant box for the libvirt provider from the Debian
# root the booted tests cache (internal/testutil/nspawn), and adds it as
# $BOX_NAME under $VAGRANT_HOME. Needs root, the Debian mirror and nothing
# else: no box is downloaded (`make vagrant-box`; vagrant/README.md).
#
# The box: linux-image-cloud-amd64 (virtio built in), grub-pc on an MBR disk
# with one ext4 partition, systemd-networkd DHCP on eth0 (net.ifnames=0) and
# systemd-resolved, openssh-server, sudo, user vagrant with Vagrant's insecure
# public key and NOPASSWD sudo, console on ttyS0. /etc/machine-id is empty and the SSH host
# keys are absent: each VM makes its own at first boot, so VMs of one box get
# different identities and DHCP leases.
#
# Reproducible: the same script on the same cached root gives the same box
# but for package versions the mirror has moved on to (manifest.txt lists
# them); the filesystem UUID, file times in the box tarball and the box's
# own files are fixed. A box built from the same inputs is not rebuilt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${VAGRANT_BOX_CACHE:-$repo/.cache/vagrant}
box_name=${BOX_NAME:-local/debian12}
export VAGRANT_HOME=${VAGRANT_HOME:-$cache/home}
export VAGRANT_CHECKPOINT_DISABLE=1
# Debian's kernel for VMs: virtio drivers built in, a small initramfs.
# systemd-resolved: the DNS server DHCP names reaches /etc/resolv.conf (apt in
# the VMs reaches Debian's mirror through libvirt's NAT).
box_packages=(linux-image-cloud-amd64 initramfs-tools grub-pc openssh-server sudo iproute2 systemd-resolved)
# Fixed, so that the box is the same each build; every VM has its own disk.
fs_uuid=6b1c2e0a-5d7f-4a39-9c61-70616365626f
disk_gib=4
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

log() { printf 'vagrant-box: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
secs() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(secs)" 'BEGIN { printf "%.1f s", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "must run as root (chroot, loop devices, mounts)"
for tool in vagrant qemu-img sfdisk losetup partx mkfs.ext4 chroot; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'bash scripts/install-deps.sh vagrant'"
done
insecure_key=$(dpkg -L vagrant 2>/dev/null | grep '/keys/vagrant.pub$' | head -n 1)
[ -f "$insecure_key" ] || die "Vagrant's insecure public key (keys/vagrant.pub of the vagrant package) not found"

start=$(secs)
root_src=$(cd "$repo" && go run ./internal/testutil/nspawn/cmd/cachedroot) || die "no cached Debian root (see the message above)"
log "cached root $root_src ($(took "$start"))"

# Built already from these inputs?
stamp=$( { cat "$0"; cat "$root_src/../complete"; printf '%s\n' "${box_packages[@]}" "$fs_uuid" "$disk_gib"; } | sha256sum | cut -c1-16)
if [ -f "$cache/box.stamp" ] && [ "$(cat "$cache/box.stamp")" = "$stamp" ] &&
  vagrant box list --machine-readable 2>/dev/null | grep -q ",box-name,$box_name\$"; then
  log "$box_name is up to date (inputs $stamp) in $VAGRANT_HOME"
  exit 0
fi

build=$cache/build
mnt=$build/mnt
loop=""
cleanup() {
  set +e
  for m in "$mnt/dev/pts" "$mnt/dev" "$mnt/proc" "$mnt/sys" "$mnt"; do
    mountpoint -q "$m" && umount "$m"
  done
  [ -n "$loop" ] && { partx -d "$loop" 2>/dev/null; losetup -d "$loop"; }
  rm -rf "$build"
}
trap cleanup EXIT
bind_system() { # bind_system DIR: /dev, /proc and /sys for a chroot
  mount --bind /dev "$1/dev" && mount --bind /dev/pts "$1/dev/pts" &&
    mount -t proc proc "$1/proc" && mount -t sysfs sysfs "$1/sys"
}
unbind_system() {
  umount "$1/dev/pts" "$1/dev" "$1/proc" "$1/sys"
}

rm -rf "$build"
mkdir -p "$build" "$cache"
rootfs=$mnt

# --- The disk: MBR, one ext4 partition, the cached root copied in -----------
t=$(secs)
raw=$build/box.raw
truncate -s "${disk_gib}G" "$raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
loop=$(losetup --find --show --partscan "$raw")
# Without udev the partition node may not appear by itself.
[ -b "${loop}p1" ] || partx -a "$loop" 2>/dev/null || true
for _ in 1 2 3 4 5; do [ -b "${loop}p1" ] && break; sleep 1; done
[ -b "${loop}p1" ] || die "no partition device ${loop}p1"
mkfs.ext4 -q -U "$fs_uuid" -L root -E root_owner=0:0 "${loop}p1"
mkdir -p "$mnt"
mount "${loop}p1" "$mnt"
cp -a "$root_src/." "$mnt/"
log "disk and root copy ($(took "$t"))"

# --- The root file system ---------------------------------------------------
t=$(secs)
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
bind_system "$rootfs"
# No daemons start in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
in_root() { chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get update -qq >"$build/apt.log" 2>&1 || { tail -n 20 "$build/apt.log" >&2; die "apt-get update in the root"; }
in_root apt-get install -y -qq --no-install-recommends "${box_packages[@]}" >>"$build/apt.log" 2>&1 ||
  { tail -n 30 "$build/apt.log" >&2; die "apt-get install ${box_packages[*]}"; }
in_root apt-get clean
rm -f "$rootfs/usr/sbin/policy-rc.d"

# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
in_root dpkg-query -W -f '${Package} ${Version}\n' >"$cache/manifest.txt"

# The vagrant user: Vagrant's insecure key (its default), sudo without a password.
in_root useradd --create-home --shell /bin/bash --user-group vagrant
install -d -m 0700 -o 1000 -g 1000 "$rootfs/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$insecure_key" "$rootfs/home/vagrant/.ssh/authorized_keys"
[ "$(stat -c %u "$rootfs/home/vagrant")" = 1000 ] || die "user vagrant is not uid 1000"
printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' >"$rootfs/etc/sudoers.d/vagrant"
chmod 0440 "$rootfs/etc/sudoers.d/vagrant"

# Network: DHCP on the first interface, the provider's management network,
# as on Debian's own boxes; Vagrant writes 50-vagrant-eth*.network for the rest.
cat >"$rootfs/etc/systemd/network/99-dhcp.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4
EOF
in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
# Nothing here waits for network-online; do not hold the boot for it.
in_root systemctl disable systemd-networkd-wait-online.service >/dev/null 2>&1 || true
# Nor for periodic jobs that only cost CPU under TCG.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true

# First boot: a machine-id of its own (empty file = not yet set) and SSH
# host keys of its own, made before sshd checks its config.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs"/etc/ssh/ssh_host_*
# Ed25519 and ECDSA only: an RSA key takes minutes to make under TCG.
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
cat >"$rootfs/etc/systemd/system/ssh.service.d/host-keys.conf" <<'EOF'
# The box ships without host keys: each VM makes its own at first boot.
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'for t in ed25519 ecdsa; do f=/etc/ssh/ssh_host_$${t}_key; [ -f $$f ] || ssh-keygen -q -t $$t -N "" -f $$f; done'
ExecStartPre=/usr/sbin/sshd -t
EOF
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n' >"$rootfs/etc/ssh/sshd_config.d/host-keys.conf"
printf 'debian\n' >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$fs_uuid" >"$rootfs/etc/fstab"
# systemd-resolved's stub; the build's copy of the host's file is replaced.
ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
# A serial console for `virsh console` and the console log.
in_root systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1
log "packages and settings ($(took "$t"))"

# --- Boot loader and image ----------------------------------------------------
t=$(secs)
chroot "$mnt" grub-install --target=i386-pc --modules="part_msdos ext2" "$loop" >"$build/grub.log" 2>&1 ||
  { cat "$build/grub.log" >&2; die "grub-install"; }
# Written by hand: grub-mkconfig would name the build's loop device as root.
# The kernel and initramfs are reached through Debian's /vmlinuz and
# /initrd.img links, which kernel updates keep current.
[ -e "$mnt/vmlinuz" ] || die "no /vmlinuz in the root"
[ -e "$mnt/initrd.img" ] || die "no /initrd.img in the root"
cat >"$mnt/boot/grub/grub.cfg" <<EOF
# Vagrant box (vagrant/box/build.sh); \`update-grub\` in the VM rewrites it.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry "Debian 12" {
  insmod part_msdos
  insmod ext2
  search --no-floppy --fs-uuid --set=root $fs_uuid
  linux /vmlinuz root=UUID=$fs_uuid ro console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0 quiet
  initrd /initrd.img
}
EOF
printf 'GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0 quiet"\nGRUB_TERMINAL="serial console"\n' \
  >"$mnt/etc/default/grub.d/vagrant.cfg"
unbind_system "$mnt"
umount "$mnt"
partx -d "$loop" 2>/dev/null || true
losetup -d "$loop"
loop=""
qemu-img convert -f raw -O qcow2 -c "$raw" "$build/box.img"
rm -f "$raw"
log "boot loader and qcow2 image ($(took "$t"))"

# --- The box ----------------------------------------------------------------
t=$(secs)
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$disk_gib" >"$build/metadata.json"
cat >"$build/Vagrantfile" <<'EOF'
# Box defaults (vagrant/box/build.sh): the libvirt provider, no synced folder
# (the box has no NFS or rsync client set up for it).
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
end
EOF
touch -d "@$SOURCE_DATE_EPOCH" "$build/metadata.json" "$build/Vagrantfile" "$build/box.img"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$build" -cf "$cache/debian12.box" metadata.json Vagrantfile box.img
vagrant box add --force --name "$box_name" "$cache/debian12.box" >"$cache/box-add.log" 2>&1 ||
  { cat "$cache/box-add.log" >&2; die "vagrant box add"; }
# libvirt keeps the previous box's image in the test bed's storage pool
# under the same name; it must not be used for the new one.
rm -f "$cache/pool/"*VAGRANTSLASH-debian12_vagrant_box_image_*
echo "$stamp" >"$cache/box.stamp"
log "box $box_name: $(du -h "$cache/debian12.box" | cut -f1) in $cache/debian12.box, added under $VAGRANT_HOME ($(took "$t"))"
log "done in $(took "$start")"
