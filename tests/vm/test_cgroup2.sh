#!/bin/sh
# `deno task test:cgroup2 [DENO TEST ARGS]`: runs the cgroup v2 suite inside
# the VM and exits with its status. With arguments, they replace the default
# file list, e.g. `deno task test:cgroup2 tests/vm/harness_test.ts`.
set -eu
cd "$(dirname "$0")/../.."

if [ "$#" -eq 0 ]; then
  set -- tests/vm/harness_test.ts cgroup/enforcement_test.ts cgroup/v2_test.ts \
    tests/vm/v2_layouts_test.ts tests/vm/v2_engine_test.ts \
    server/jobs/engine_subtree_test.ts tests/jobs_restart_test.ts \
    tests/server_cgroups_test.ts
fi

sh tests/vm/setup.sh
# Type-check and fetch every dependency here: emulated, a cold type-check takes
# 10+ s, and the guest has no network. Only the paths among the arguments.
paths=tests/vm/layout_server.ts
for arg in "$@"; do
  if [ -e "$arg" ]; then paths="$paths $arg"; fi
done
# shellcheck disable=SC2086 # word splitting of the path list is intended
deno check $paths

deno=$(deno eval --no-config 'console.log(Deno.execPath())')
deno_dir=$(deno info --json --no-config | sed -n 's/^ *"denoDir": "\(.*\)",$/\1/p')
[ -n "$deno_dir" ] || {
  echo "tests/vm/test_cgroup2.sh: cannot tell Deno's cache directory" >&2
  exit 1
}

exec tests/vm/run.sh --timeout 600 --share "$PWD" --share "$deno_dir" --env "DENO_DIR=$deno_dir" \
  --env NO_COLOR=1 -- "$deno" test -A --no-check "$@"
