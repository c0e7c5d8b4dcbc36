#!/bin/bash
# Runs one command inside a throw-away VM with a pure cgroup v2 hierarchy and
# exits with its status. See tests/vm/README.md; run tests/vm/setup.sh first.
#
# The guest sees the host's / read-only under a tmpfs overlay (writes vanish
# with the VM), a 64 MiB raw disk as /dev/vda, no network but lo, and runs the
# command as root in the root cgroup. Its stdout and stderr stream here live.
#
# Exit status: the command's, 124 if the VM ran out of time, 125 if the VM
# ended without a result (the console and daemon logs are printed then).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tests/vm/run.sh [OPTIONS] [--] COMMAND [ARG...]

Options:
  --share DIR       also show host DIR at the same path in the guest (read-only
                    below a tmpfs overlay); needed for anything under /tmp or
                    /run, or on another file system than /. Repeatable.
  --cwd DIR         working directory of the command (default: the current one)
  --env NAME=VALUE  environment variable for the command. Repeatable.
  --timeout SECS    power the VM off after SECS seconds, exit 124 (default 900)
  --disk MIB        size of the raw virtio disk /dev/vda, 0 for none (default 64)
  --smp N           virtual CPUs (default 2)
  --memory SIZE     guest RAM, as qemu takes it (default 2G)
  --keep            keep the run directory (console and daemon logs)
EOF
}

die() {
  echo "tests/vm/run.sh: $*" >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
cache=${TELEJOB_VM_CACHE:-/var/cache/telejob-vm}
shares=()
envs=()
cwd=$PWD
timeout_secs=900
disk_mib=64
smp=2
memory=2G
keep=

while (($#)); do
  option=$1
  case $option in
  --keep) keep=1 && shift && continue ;;
  -h | --help) usage && exit 0 ;;
  --) shift && break ;;
  --share | --cwd | --env | --timeout | --disk | --smp | --memory)
    (($# >= 2)) || die "$option needs a value"
    value=$2
    shift 2
    ;;
  -*) usage >&2 && die "unknown option $option" ;;
  *) break ;;
  esac
  case $option in
  --share | --cwd)
    [[ -d $value ]] || die "$option: $value is not a directory"
    value=$(realpath "$value")
    # init.sh splits the list of shares on whitespace.
    [[ $value != *[[:space:]]* ]] || die "$option: paths with whitespace are not supported: '$value'"
    if [[ $option == --share ]]; then shares+=("$value"); else cwd=$value; fi
    ;;
  --env)
    [[ $value == [A-Za-z_]*=* ]] || die "--env needs NAME=VALUE, got '$value'"
    envs+=("$value")
    ;;
  --timeout) timeout_secs=$value ;;
  --disk) disk_mib=$value ;;
  --smp) smp=$value ;;
  --memory) memory=$value ;;
  esac
done
(($#)) || { usage >&2 && die "no command given"; }
[[ $timeout_secs =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds, got '$timeout_secs'"
[[ $disk_mib =~ ^[0-9]+$ ]] || die "--disk must be a size in MiB, got '$disk_mib'"
[[ -s $cache/vmlinux && -s $cache/initramfs.cpio ]] ||
  die "no VM image in $cache: run tests/vm/setup.sh first"
cmp -s "$here/init.sh" "$cache/initramfs/init" ||
  die "tests/vm/init.sh changed since the initramfs was built: run tests/vm/setup.sh"

# quote ARG: one shell word that dash reads back as exactly ARG.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

run=$(mktemp -d "${TMPDIR:-/tmp}/telejob-vm.XXXXXX")
mkdir "$run/ctl"
pids=()
qemu_pid=
cleanup() {
  trap - EXIT INT TERM
  [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $keep ]]; then
    echo "tests/vm/run.sh: run directory kept: $run" >&2
  else
    # The read-only bind mounts live in virtiofsd's private mount namespace,
    # so nothing is mounted here any more.
    rm -rf "$run"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- what the guest runs ----------------------------------------------------
vm_shares=""
for i in "${!shares[@]}"; do vm_shares+="share$i:${shares[$i]} "; done
{
  echo "VM_SHARES=$(quote "$vm_shares")"
  echo "VM_CWD=$(quote "$cwd")"
} >"$run/ctl/config"
{
  if ((disk_mib > 0)); then echo "export TELEJOB_TEST_BLOCK_DEVICE=/dev/vda"; fi
  for kv in "${envs[@]}"; do echo "export ${kv%%=*}=$(quote "${kv#*=}")"; done
} >"$run/ctl/env"
{
  for arg in "$@"; do printf '%s ' "$(quote "$arg")"; done
  echo
} >"$run/ctl/cmd"
touch "$run/ctl/stdout" "$run/ctl/stderr"

# --- one virtiofsd per share ------------------------------------------------
virtiofsd=/usr/lib/qemu/virtiofsd
sockets=()
qemu_shares=()

# share TAG DIR [ro]: serves DIR to the guest as virtiofs TAG. Read-only shares
# are served from a read-only, non-recursive bind mount in a private mount
# namespace (virtiofsd 7.2 has no read-only option; non-recursive also keeps
# the host's /proc, /sys and /dev out of the guest). virtiofsd logs to a file:
# with --syslog its own seccomp filter kills it (socket() is not allowed).
share() {
  local tag=$1 dir=$2 sock=$run/$1.sock
  if [[ ${3:-} == ro ]]; then
    mkdir "$run/$tag.ro"
    unshare -m --propagation private sh -c '
      mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" &&
      exec "$3" --socket-path="$4" -o source="$2" -o cache=always -o sandbox=namespace
    ' sh "$dir" "$run/$tag.ro" "$virtiofsd" "$sock" 2>>"$run/virtiofsd.log" &
  else
    "$virtiofsd" --socket-path="$sock" -o source="$dir" -o cache=auto -o sandbox=namespace \
      2>>"$run/virtiofsd.log" &
  fi
  pids+=($!)
  sockets+=("$sock")
  qemu_shares+=(-chardev "socket,id=c$tag,path=$sock"
    -device "vhost-user-fs-pci,queue-size=1024,chardev=c$tag,tag=$tag")
}
share ctl "$run/ctl"
share hostroot / ro
for i in "${!shares[@]}"; do share "share$i" "${shares[$i]}" ro; done

for _ in $(seq 100); do
  ready=1
  for sock in "${sockets[@]}"; do [[ -S $sock ]] || ready=; done
  [[ -n $ready ]] && break
  sleep 0.05
done
[[ -n $ready ]] || {
  cat "$run/virtiofsd.log" >&2
  die "virtiofsd did not start"
}

# --- the VM -----------------------------------------------------------------
# /dev/kvm on our machines is PVM (kvm_pvm), which cannot run a stock kernel:
# emulate there, use KVM only where it is real hardware virtualisation.
# TELEJOB_VM_ACCEL=tcg|kvm overrides the choice.
accel_mode=${TELEJOB_VM_ACCEL:-auto}
if [[ $accel_mode == auto ]]; then
  accel_mode=tcg
  if [[ -w /dev/kvm && ! -e /sys/module/kvm_pvm ]]; then accel_mode=kvm; fi
fi
case $accel_mode in
kvm) accel=(-accel kvm -cpu host) ;;
tcg) accel=(-accel tcg,thread=multi -cpu qemu64) ;;
*) die "TELEJOB_VM_ACCEL must be auto, tcg or kvm, got '$accel_mode'" ;;
esac
disk=()
if ((disk_mib > 0)); then
  truncate -s "${disk_mib}M" "$run/disk.img"
  disk=(-drive "file=$run/disk.img,if=virtio,format=raw,aio=threads")
fi

# The guest's RAM must be a shared memfd for vhost-user-fs. panic=-1 with
# -no-reboot makes qemu exit if /init dies; /init powers off through ACPI.
timeout -k 5 "$timeout_secs" qemu-system-x86_64 "${accel[@]}" -M q35 -smp "$smp" -m "$memory" \
  -object "memory-backend-memfd,id=mem,size=$memory,share=on" -numa node,memdev=mem \
  -nodefaults -no-user-config -display none -no-reboot \
  -chardev "file,id=con,path=$run/console.log" -serial chardev:con \
  -kernel "$cache/vmlinux" -initrd "$cache/initramfs.cpio" \
  -append "console=ttyS0 quiet loglevel=1 panic=-1" \
  "${qemu_shares[@]}" "${disk[@]}" \
  </dev/null >"$run/qemu.log" 2>&1 &
qemu_pid=$!

tail -c +1 -f --pid="$qemu_pid" "$run/ctl/stdout" &
pids+=($!)
tail -c +1 -f --pid="$qemu_pid" "$run/ctl/stderr" >&2 &
pids+=($!)

status=0
wait "$qemu_pid" 2>/dev/null || status=$?
qemu_pid=
# Let both tails print the last bytes (they exit on their own once qemu has).
wait "${pids[@]: -2}" 2>/dev/null || true

if ((status == 124 || status == 137)); then
  echo "tests/vm/run.sh: the VM did not finish within ${timeout_secs}s" >&2
  exit 124
fi
if [[ ! -s $run/ctl/rc ]]; then
  echo "tests/vm/run.sh: the VM ended without a result (qemu exit status $status)" >&2
  for f in console.log qemu.log virtiofsd.log; do
    echo "--- $f (last 30 lines)" >&2
    tail -n 30 "$run/$f" >&2 2>/dev/null || true
  done
  exit 125
fi
exit "$(cat "$run/ctl/rc")"
