#!/bin/sh
# /init of the test VM (PID 1, busybox sh in the initramfs built by setup.sh).
#
# Builds a root from the host's / (read-only virtiofs) under a throw-away
# tmpfs overlay, mounts a pure cgroup v2 hierarchy with every controller the
# tests need enabled at the root, runs the command that tests/vm/run.sh left
# in the `ctl` share, writes its exit status back there and powers off.
#
# The ctl share holds (all written by run.sh):
#   config  shell variables: VM_SHARES ("tag:/path ..."), VM_CWD
#   env     `export NAME='value'` lines for the command
#   cmd     the command, as one quoted shell line
# and receives stdout, stderr and rc.

export PATH=/bin
/bin/busybox --install -s /bin

fail() {
  echo "telejob-vm init: $*" >/dev/console
  # Without an rc file run.sh reports "no result" with the console log.
  poweroff -f
  exit 1
}

mkdir -p /proc /sys /dev
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel gave us no stdio.
exec </dev/console >/dev/console 2>&1
modprobe -a virtio_pci virtio_blk overlay virtiofs || fail "loading modules failed"

mkdir -p /ctl && mount -t virtiofs ctl /ctl || fail "mounting the ctl share failed"
. /ctl/config

# Layers for the overlays live on one tmpfs so overlayfs gets xattr support.
mkdir -p /layers && mount -t tmpfs -o mode=755 layers /layers

# overlay_ro TAG TARGET: mount virtiofs TAG read-only with a tmpfs upper layer
# at TARGET, so the guest can write anywhere yet never reaches the host.
overlay_ro() {
  mkdir -p "/layers/$1/lower" "/layers/$1/upper" "/layers/$1/work" "$2"
  mount -t virtiofs -o ro "$1" "/layers/$1/lower" || fail "mounting share $1 failed"
  mount -t overlay overlay \
    -o "lowerdir=/layers/$1/lower,upperdir=/layers/$1/upper,workdir=/layers/$1/work" "$2" ||
    fail "overlay for $1 at $2 failed"
}

root=/newroot
overlay_ro hostroot "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devtmpfs devtmpfs "$root/dev"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"
mount -t tmpfs -o mode=755 run "$root/run"

# A pure v2 hierarchy, delegation-aware like systemd's, with the controllers
# the job cgroups use handed down from the root.
mount -t cgroup2 -o nsdelegate cgroup2 "$root/sys/fs/cgroup" || fail "mounting cgroup2 failed"
echo "+cpu +memory +io +pids" >"$root/sys/fs/cgroup/cgroup.subtree_control" ||
  fail "enabling cgroup controllers failed"

ip link set lo up

# Extra shares appear at the same path as on the host (after /tmp and /run
# are mounted, so a share below them stays visible).
for share in $VM_SHARES; do
  overlay_ro "${share%%:*}" "$root${share#*:}"
done

mkdir -p "$root/run/vmctl"
mount --bind /ctl "$root/run/vmctl"

# The command runs as a child of PID 1, which reaps any orphan it leaves.
# Redirections are opened here, outside the chroot, straight into ctl.
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TELEJOB_VM=1 \
  chroot "$root" /bin/sh -c '. /run/vmctl/env && cd "$1" && . /run/vmctl/cmd' sh "$VM_CWD" \
  </dev/null >/ctl/stdout 2>/ctl/stderr
echo $? >/ctl/rc.tmp && mv /ctl/rc.tmp /ctl/rc
sync
poweroff -f
