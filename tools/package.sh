#!/bin/sh
# Packs a release archive, as the release workflow does and install.sh
# expects:
#
#   sh tools/package.sh VERSION TARGET BIN_DIR OUT_DIR
#
# writes OUT_DIR/telejob-VERSION-TARGET.tar.gz holding one directory,
# telejob-VERSION-TARGET/, with telejob and telejob-server (from
# BIN_DIR/telejob-TARGET and BIN_DIR/telejob-server-TARGET, as
# `deno task compile` names them), README.md, LICENSE and
# telejob-server.service. Once every archive is there,
#
#   sh tools/package.sh --sums VERSION OUT_DIR
#
# writes OUT_DIR/SHA256SUMS (of every archive) and OUT_DIR/VERSION (which
# install.sh reads to find the latest release).
set -eu
cd "$(dirname "$0")/.."

die() {
  echo "package.sh: $*" >&2
  exit 1
}

if [ "${1:-}" = "--sums" ]; then
  [ $# -eq 3 ] || die "usage: sh tools/package.sh --sums VERSION OUT_DIR"
  cd "$3"
  set -- "$2" telejob-"$2"-*.tar.gz
  [ -e "$2" ] || die "no telejob-$1-*.tar.gz in $PWD"
  version=$1
  shift
  sha256sum -- "$@" >SHA256SUMS.tmp
  mv SHA256SUMS.tmp SHA256SUMS
  echo "$version" >VERSION
  exit 0
fi

[ $# -eq 4 ] || die "usage: sh tools/package.sh VERSION TARGET BIN_DIR OUT_DIR"
version=$1 target=$2 bin_dir=$3 out_dir=$4
case $version in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) die "VERSION must be like 1.2.3, got \"$version\"" ;;
esac

name="telejob-$version-$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/$name"
for program in telejob telejob-server; do
  [ -f "$bin_dir/$program-$target" ] ||
    die "missing $bin_dir/$program-$target: run deno task compile first"
  install -m 0755 "$bin_dir/$program-$target" "$work/$name/$program"
done
install -m 0644 README.md LICENSE deploy/telejob-server.service "$work/$name/"
mkdir -p "$out_dir"
# Owner and order fixed, so the archive does not depend on who packs it.
tar -C "$work" --owner=0 --group=0 --numeric-owner --sort=name \
  -czf "$out_dir/$name.tar.gz.tmp" "$name"
mv "$out_dir/$name.tar.gz.tmp" "$out_dir/$name.tar.gz"
echo "$out_dir/$name.tar.gz"
