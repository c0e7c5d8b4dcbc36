#!/bin/sh
# Installs telejob and telejob-server from a Telejob release.
#
#   curl -fsSL https://raw.githubusercontent.com/telejob/telejob/main/install.sh | sudo sh
#   sudo sh install.sh --version 0.1.0 --systemd
#
# Downloads telejob-VERSION-TARGET.tar.gz and SHA256SUMS from
# $TELEJOB_RELEASE_URL/vVERSION/ (default: the GitHub releases of
# telejob/telejob), checks the archive against SHA256SUMS and installs both
# binaries to PREFIX/bin. Nothing is installed when the download, the
# checksum or the architecture is wrong. Running it again is safe: it
# replaces the binaries (atomically) and keeps configuration.
#
# POSIX sh; needs curl or wget, sha256sum (or shasum), tar, gzip.
set -eu

# The repository the releases come from. A fork changes this line, or sets
# TELEJOB_RELEASE_URL to its own mirror.
GITHUB_REPO=telejob/telejob

usage() {
  cat <<EOF
Usage: install.sh [--version VERSION] [--prefix DIR] [--systemd] [--dry-run]

Installs telejob and telejob-server from a Telejob release.

  --version VERSION  release to install, like 0.1.0 (default: latest)
  --prefix DIR       binaries go to DIR/bin (default: /usr/local)
  --systemd          also install the systemd unit
                     (/etc/systemd/system/telejob-server.service) and create
                     /etc/telejob (0750) and /var/lib/telejob (0711)
  --root DIR         install below DIR instead of / (for images and tests)
  --arch ARCH        the machine's architecture (default: uname -m)
  --dry-run          say what would be downloaded and installed, change nothing
  -h, --help         show this help

Environment:
  TELEJOB_RELEASE_URL  where releases are, default
                       https://github.com/$GITHUB_REPO/releases/download;
                       VERSION's files are in \$TELEJOB_RELEASE_URL/vVERSION/
  TELEJOB_LATEST_URL   a file holding the latest version, default
                       https://github.com/$GITHUB_REPO/releases/latest/download/VERSION
                       (or \$TELEJOB_RELEASE_URL/latest/VERSION when that is set)
  TELEJOB_DOWNLOADER   curl or wget (default: curl when installed)
EOF
}

say() {
  echo "install.sh: $*" >&2
}

die() {
  say "$*"
  exit 1
}

usage_error() {
  say "$*; run \"sh install.sh --help\""
  exit 2
}

version="" prefix=/usr/local systemd=0 dry_run=0 root="" arch=""
while [ $# -gt 0 ]; do
  case $1 in
    --version | --prefix | --root | --arch)
      if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
      case $1 in
        --version) version=$2 ;;
        --prefix) prefix=$2 ;;
        --root) root=$2 ;;
        --arch) arch=$2 ;;
      esac
      shift 2
      ;;
    --version=* | --prefix=* | --root=* | --arch=*)
      value=${1#*=}
      [ -n "$value" ] || usage_error "${1%%=*} needs a value"
      case $1 in
        --version=*) version=$value ;;
        --prefix=*) prefix=$value ;;
        --root=*) root=$value ;;
        --arch=*) arch=$value ;;
      esac
      shift
      ;;
    --systemd) systemd=1 && shift ;;
    --dry-run) dry_run=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    *) usage_error "Unknown option \"$1\"" ;;
  esac
done

case $prefix in
  /*) ;;
  *) usage_error "--prefix must be an absolute path, got \"$prefix\"" ;;
esac
case $root in
  "" | /*) root=${root%/} ;;
  *) usage_error "--root must be an absolute path, got \"$root\"" ;;
esac

# Architecture -> release target.
[ -n "$arch" ] || arch=$(uname -m)
case $arch in
  x86_64 | amd64) target=x86_64-unknown-linux-gnu ;;
  aarch64 | arm64) target=aarch64-unknown-linux-gnu ;;
  *) die "Unsupported architecture \"$arch\": Telejob is released for x86_64 and aarch64 Linux; nothing was installed" ;;
esac
if [ "$(uname -s)" != Linux ]; then
  die "Unsupported system \"$(uname -s)\": Telejob runs on Linux; nothing was installed"
fi

# Downloads URL to FILE with curl or wget; fails with a message naming URL.
case ${TELEJOB_DOWNLOADER:-} in
  "")
    if command -v curl >/dev/null 2>&1; then
      downloader=curl
    elif command -v wget >/dev/null 2>&1; then
      downloader=wget
    else
      die "Neither curl nor wget is installed: install one of them and run install.sh again"
    fi
    ;;
  curl | wget) downloader=$TELEJOB_DOWNLOADER ;;
  *) usage_error "TELEJOB_DOWNLOADER must be curl or wget, got \"$TELEJOB_DOWNLOADER\"" ;;
esac
download() { # URL FILE
  case $downloader in
    curl) curl --proto '=https,http' -fsSL --retry 2 -o "$2" "$1" ;;
    wget) wget -q -O "$2" "$1" ;;
  esac || {
    rm -f "$2"
    return 1
  }
}

release_url=${TELEJOB_RELEASE_URL:-https://github.com/$GITHUB_REPO/releases/download}
release_url=${release_url%/}
if [ -n "${TELEJOB_LATEST_URL:-}" ]; then
  latest_url=$TELEJOB_LATEST_URL
elif [ -n "${TELEJOB_RELEASE_URL:-}" ]; then
  latest_url=$release_url/latest/VERSION
else
  latest_url=https://github.com/$GITHUB_REPO/releases/latest/download/VERSION
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/telejob-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "$version" ] || [ "$version" = latest ]; then
  download "$latest_url" "$work/VERSION" ||
    die "Cannot find the latest release at $latest_url: check the network, or pass --version"
  version=$(tr -d ' \t\r\n' <"$work/VERSION")
  [ -n "$version" ] || die "$latest_url is empty: pass --version"
fi
version=${version#v}
case $version in
  *[!0-9A-Za-z.+-]* | "" | [!0-9]*)
    die "Invalid version \"$version\": use one like 0.1.0"
    ;;
esac

name=telejob-$version-$target
archive_url=$release_url/v$version/$name.tar.gz
sums_url=$release_url/v$version/SHA256SUMS
bin_dir=$root$prefix/bin
unit=$root/etc/systemd/system/telejob-server.service
config_dir=$root/etc/telejob
state_dir=$root/var/lib/telejob

if [ "$dry_run" = 1 ]; then
  echo "Would download $archive_url"
  echo "Would check it against $sums_url"
  echo "Would install $bin_dir/telejob and $bin_dir/telejob-server"
  if [ "$systemd" = 1 ]; then
    echo "Would install $unit"
    echo "Would create $config_dir (0750) and $state_dir (0711)"
  fi
  exit 0
fi

say "downloading Telejob $version for $target"
download "$archive_url" "$work/$name.tar.gz" ||
  die "Cannot download $archive_url: check that release $version exists (https://github.com/$GITHUB_REPO/releases) and has $target; nothing was installed"
download "$sums_url" "$work/SHA256SUMS" ||
  die "Cannot download $sums_url; nothing was installed"

# The expected checksum is the SHA256SUMS line for exactly this archive.
expected=$(awk -v f="$name.tar.gz" '$2 == f || $2 == "*" f { print $1; exit }' "$work/SHA256SUMS")
[ -n "$expected" ] ||
  die "SHA256SUMS of release $version lists no $name.tar.gz; nothing was installed"
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$work/$name.tar.gz" | awk '{ print $1 }')
elif command -v shasum >/dev/null 2>&1; then
  actual=$(shasum -a 256 "$work/$name.tar.gz" | awk '{ print $1 }')
else
  die "Neither sha256sum nor shasum is installed, so the download cannot be checked; nothing was installed"
fi
if [ "$actual" != "$expected" ]; then
  die "Checksum mismatch for $name.tar.gz: SHA256SUMS says $expected, the download is $actual; it is corrupt or was tampered with, so nothing was installed. Try again, or download and check it by hand"
fi

tar -xzf "$work/$name.tar.gz" -C "$work" ||
  die "Cannot unpack $name.tar.gz; nothing was installed"
for file in telejob telejob-server telejob-server.service; do
  [ -f "$work/$name/$file" ] ||
    die "$name.tar.gz has no $file; nothing was installed"
done

# Writes SRC to DEST with MODE by a rename, so a running program keeps its
# old file and a failure leaves the old one in place.
place() { # SRC DEST MODE
  if ! { cp "$1" "$2.new.$$" && chmod "$3" "$2.new.$$" && mv -f "$2.new.$$" "$2"; }; then
    rm -f "$2.new.$$"
    die "Cannot write $2: run as root (sudo sh install.sh) or pick a --prefix you can write"
  fi
}

mkdir -p "$bin_dir" 2>/dev/null ||
  die "Cannot create $bin_dir: run as root (sudo sh install.sh) or pick a --prefix you can write"
place "$work/$name/telejob" "$bin_dir/telejob" 0755
place "$work/$name/telejob-server" "$bin_dir/telejob-server" 0755
say "installed $bin_dir/telejob and $bin_dir/telejob-server ($version)"

if [ "$systemd" = 1 ]; then
  mkdir -p "$(dirname "$unit")" ||
    die "Cannot create $(dirname "$unit"): run as root"
  # The unit names /usr/local/bin/telejob-server; point it at --prefix.
  sed "s|/usr/local/bin/telejob-server|$prefix/bin/telejob-server|" \
    "$work/$name/telejob-server.service" >"$work/unit"
  place "$work/unit" "$unit" 0644
  # Configuration and certificates are secrets: root and its group only.
  mkdir -p "$config_dir" "$state_dir"
  chmod 0750 "$config_dir"
  chmod 0711 "$state_dir"
  say "installed $unit; created $config_dir and $state_dir"
  if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
  fi
  if [ ! -e "$config_dir/server.toml" ]; then
    say "next: make certificates and a config, then start the service:"
    say "  telejob-server certs --dir /etc/telejob/pki --user alice"
    say "  write /etc/telejob/server.toml (see the README's \"First run\")"
    say "  systemctl enable --now telejob-server"
  else
    say "restart the service to run the new version: systemctl restart telejob-server (this stops running jobs)"
  fi
fi
