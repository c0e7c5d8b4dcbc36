#!/bin/sh
# Generates TypeScript types and grpc-js service definitions for proto/**
# with ts-proto into proto/gen/ (committed).
#
#   sh proto/generate.sh          regenerate proto/gen/
#   sh proto/generate.sh --check  fail when proto/gen/ is stale (for CI)
#
# Needs protoc and the well-known protos (Debian: apt-get install
# protobuf-compiler libprotobuf-dev; the latter puts them in /usr/include).
# The ts-proto plugin runs under Deno, pinned to the version in deno.json, so
# no node_modules is needed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

if ! command -v protoc >/dev/null 2>&1; then
  echo "protoc not found: install it with 'apt-get install protobuf-compiler'" >&2
  exit 1
fi

include=${PROTOC_INCLUDE:-/usr/include}
if [ ! -f "$include/google/protobuf/timestamp.proto" ]; then
  echo "google/protobuf/timestamp.proto not found under $include: install libprotobuf-dev (Debian ships the well-known protos there) or set PROTOC_INCLUDE" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# protoc runs plugins as executables; this one starts ts-proto under Deno.
cat >"$tmp/protoc-gen-ts_proto" <<'PLUGIN'
#!/bin/sh
exec deno run --allow-read --allow-env --allow-ffi --allow-sys --quiet npm:ts-proto@2.18.0/protoc-gen-ts_proto "$@"
PLUGIN
chmod +x "$tmp/protoc-gen-ts_proto"

mkdir "$tmp/gen"
# outputServices=grpc-js: service definitions and a client constructor for
# @grpc/grpc-js. importSuffix=.ts: Deno resolves relative imports only with
# their extension. Timestamps become Date; 64-bit integers become number.
protoc \
  --plugin="protoc-gen-ts_proto=$tmp/protoc-gen-ts_proto" \
  --ts_proto_out="$tmp/gen" \
  --ts_proto_opt=outputServices=grpc-js \
  --ts_proto_opt=esModuleInterop=true \
  --ts_proto_opt=importSuffix=.ts \
  --ts_proto_opt=useDate=true \
  --ts_proto_opt=forceLong=number \
  -I proto -I "$include" \
  $(find proto/telejob -name '*.proto' | sort)

if [ "${1:-}" = "--check" ]; then
  if ! diff -ru proto/gen "$tmp/gen"; then
    echo "proto/gen is stale: run 'deno task proto' and commit the result" >&2
    exit 1
  fi
  echo "proto/gen is up to date"
  exit 0
fi

rm -rf proto/gen
cp -r "$tmp/gen" proto/gen
echo "generated proto/gen from proto/telejob"
