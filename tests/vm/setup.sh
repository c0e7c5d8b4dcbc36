#!/bin/sh
# Prepares everything tests/vm/run.sh boots, once, and is cheap to re-run:
#   * installs the host tools it lacks (qemu-system-x86 brings virtiofsd; lz4);
#   * downloads Debian's cloud kernel and busybox-static with `apt-get download`
#     and unpacks them into the cache instead of installing them (installing
#     the kernel would pull initramfs-tools and udev onto the host and write an
#     unused initrd);
#   * extracts an uncompressed vmlinux (booted through its PVH note, which
#     skips decompressing the kernel under emulation);
#   * builds the initramfs (busybox, the virtio/virtiofs/overlay modules and
#     tests/vm/init.sh as /init) whenever init.sh changed.
#
# Cache: $TELEJOB_VM_CACHE, default /var/cache/telejob-vm. Needs root and apt.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${TELEJOB_VM_CACHE:-/var/cache/telejob-vm}
# Modules the guest needs before it can mount anything; their dependencies
# are resolved from modules.dep.
modules="virtio_pci virtio_blk overlay virtiofs"

log() { echo "tests/vm/setup.sh: $*" >&2; }

apt_updated=
apt_update_once() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
}

# --- host tools ------------------------------------------------------------
missing=
command -v qemu-system-x86_64 >/dev/null && [ -x /usr/lib/qemu/virtiofsd ] ||
  missing="$missing qemu-system-x86"
command -v lz4 >/dev/null || missing="$missing lz4"
command -v unshare >/dev/null || missing="$missing util-linux"
if [ -n "$missing" ]; then
  log "installing$missing"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p "$cache"

# --- kernel, modules and busybox (downloaded, never installed) -------------
if [ ! -s "$cache/vmlinux" ] || [ ! -d "$cache/initramfs" ]; then
  apt_update_once
  # The metapackage names the current kernel ABI, e.g. linux-image-6.1.0-56-cloud-amd64.
  kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 |
    sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
  [ -n "$kernel_pkg" ] || {
    log "cannot resolve linux-image-cloud-amd64 to a kernel package (is apt's index current?)"
    exit 1
  }
  log "downloading $kernel_pkg and busybox-static"
  work=$(mktemp -d "${TMPDIR:-/tmp}/telejob-vm-setup.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$kernel_pkg" busybox-static)
  dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
  busybox="$work/busybox/bin/busybox"
  kver=$(ls "$work/kernel/lib/modules")

  # The bzImage holds an LZ4 stream of vmlinux after a small decompressor:
  # try every LZ4 magic until one decompresses to an ELF file.
  vmlinuz="$work/kernel/boot/vmlinuz-$kver"
  found=
  for offset in $(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | cut -d: -f1); do
    tail -c "+$((offset + 1))" "$vmlinuz" | lz4 -dc 2>/dev/null >"$work/vmlinux" || true
    if [ "$(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]; then
      found=1
      break
    fi
  done
  [ -n "$found" ] || {
    log "could not extract vmlinux from $vmlinuz"
    exit 1
  }

  # Stage the initramfs tree: busybox plus the needed modules in their usual
  # place with a modules.dep trimmed to them, so the guest can use modprobe.
  rm -rf "$cache/initramfs"
  stage="$cache/initramfs"
  mkdir -p "$stage/bin" "$stage/lib/modules/$kver"
  cp "$busybox" "$stage/bin/busybox"
  "$busybox" depmod -b "$work/kernel" "$kver"
  dep="$work/kernel/lib/modules/$kver/modules.dep"
  for m in $modules; do
    line=$(grep -E "/$m\.ko:" "$dep")
    for ko in $(echo "$line" | tr -d :); do
      if ! grep -q "^$ko:" "$stage/lib/modules/$kver/modules.dep" 2>/dev/null; then
        mkdir -p "$stage/lib/modules/$kver/$(dirname "$ko")"
        cp "$work/kernel/lib/modules/$kver/$ko" "$stage/lib/modules/$kver/$ko"
        grep "^$ko:" "$dep" >>"$stage/lib/modules/$kver/modules.dep"
      fi
    done
  done

  mv "$work/vmlinux" "$cache/vmlinux"
  echo "$kver" >"$cache/kernel-release"
  rm -f "$cache/initramfs.cpio"
  log "kernel $kver cached in $cache"
fi

# --- initramfs, rebuilt when init.sh changes -------------------------------
if ! cmp -s "$here/init.sh" "$cache/initramfs/init" || [ ! -s "$cache/initramfs.cpio" ]; then
  cp "$here/init.sh" "$cache/initramfs/init"
  chmod 755 "$cache/initramfs/init"
  ln -sf busybox "$cache/initramfs/bin/sh"
  (cd "$cache/initramfs" && find . | ./bin/busybox cpio -o -H newc 2>/dev/null) >"$cache/initramfs.cpio.tmp"
  mv "$cache/initramfs.cpio.tmp" "$cache/initramfs.cpio"
  log "initramfs built: $cache/initramfs.cpio"
fi
