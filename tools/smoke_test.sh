#!/bin/sh
# Smoke test of a release archive, as root (the server makes cgroups):
#
#   sudo sh tools/smoke_test.sh dist/telejob-VERSION-x86_64-unknown-linux-gnu.tar.gz
#
# Unpacks it into a temporary directory and, with only its binaries: makes
# certificates with `telejob-server certs`, starts the server on a free
# loopback port, and checks --version, start, status, logs, stop and the
# table of list. Exits non-zero with the failing step on stderr.
set -eu

[ $# -eq 1 ] || {
  echo "usage: sh tools/smoke_test.sh ARCHIVE" >&2
  exit 2
}
archive=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
name=$(basename "$archive" .tar.gz)
version=${name#telejob-}
version=${version%-*-*-*-*}

work=$(mktemp -d "${TMPDIR:-/tmp}/telejob-smoke.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "smoke test FAILED: $*" >&2
  if [ -f "$work/server.log" ]; then
    echo "--- server log" >&2
    cat "$work/server.log" >&2
  fi
  exit 1
}

step() {
  echo "smoke: $*" >&2
}

step "unpacking $name.tar.gz"
tar -xzf "$archive" -C "$work"
bin=$work/$name
for file in telejob telejob-server README.md LICENSE telejob-server.service; do
  [ -f "$bin/$file" ] || fail "the archive has no $file"
done
# Run from an empty directory: nothing may come from the working tree.
mkdir "$work/cwd"
cd "$work/cwd"

step "--version"
for program in telejob telejob-server; do
  line=$("$bin/$program" --version) || fail "$program --version exited $?"
  case $line in
    "$program $version (commit "*) ;;
    *) fail "$program --version printed \"$line\", expected \"$program $version (commit ...\"" ;;
  esac
done

step "telejob-server certs"
"$bin/telejob-server" certs --dir "$work/certs" --user smoke --server-name 127.0.0.1 \
  >/dev/null || fail "telejob-server certs exited $?"
for file in server-ca.crt client-ca.crt server.crt server.key smoke.crt smoke.key; do
  [ -f "$work/certs/$file" ] || fail "telejob-server certs wrote no $file"
done

step "starting telejob-server"
"$bin/telejob-server" --address 127.0.0.1:0 --data-dir "$work/data" \
  --server-cert "$work/certs/server.crt" --server-key "$work/certs/server.key" \
  --client-ca-cert "$work/certs/client-ca.crt" 2>"$work/server.log" &
server_pid=$!
port=""
tries=0
while [ -z "$port" ]; do
  kill -0 "$server_pid" 2>/dev/null || fail "telejob-server exited"
  tries=$((tries + 1))
  [ "$tries" -le 300 ] || fail "telejob-server did not log \"listening\" in 30 s"
  port=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log")
  [ -n "$port" ] || sleep 0.1
done

export TELEJOB_ADDRESS="127.0.0.1:$port"
export TELEJOB_CLIENT_CERT="$work/certs/smoke.crt"
export TELEJOB_CLIENT_KEY="$work/certs/smoke.key"
export TELEJOB_SERVER_CA_CERT="$work/certs/server-ca.crt"
export TELEJOB_TIME_FORMAT=15:04:05

step "telejob start"
id=$("$bin/telejob" start sh -c 'echo smoke-output; exec sleep 300') ||
  fail "telejob start exited $?"
case $id in
  "" | *[!0-9]*) fail "telejob start printed \"$id\", expected a job id" ;;
esac

step "telejob status"
status=$("$bin/telejob" status "$id") || fail "telejob status exited $?"
echo "$status" | head -n 1 | grep -Eq '^ID +COMMAND +STATE +STARTED +STOPPED +EXIT' ||
  fail "telejob status printed no table header: $status"
echo "$status" | grep -Eq "^$id +sh -c .* running " ||
  fail "telejob status does not show job $id running: $status"

step "telejob logs"
tries=0
until [ "$("$bin/telejob" logs "$id")" = smoke-output ]; do
  tries=$((tries + 1))
  [ "$tries" -le 100 ] || fail "telejob logs never printed the job's output"
  sleep 0.1
done

step "telejob stop"
"$bin/telejob" stop --grace 1s "$id" || fail "telejob stop exited $?"

step "telejob list"
list=$("$bin/telejob" list) || fail "telejob list exited $?"
echo "$list" | head -n 1 | grep -Eq '^ID +COMMAND +STATE' ||
  fail "telejob list printed no table header: $list"
echo "$list" | grep -Eq "^$id +sh -c .* stopped .* stopped *$" ||
  fail "telejob list does not show job $id stopped: $list"

step "stopping telejob-server"
kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=""
[ "$code" -eq 0 ] || fail "telejob-server exited $code after SIGTERM"
step "passed"
