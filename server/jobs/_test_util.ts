/**
 * Shared set-up of the engine's tests: an engine on a fresh data dir, with
 * its job cgroups below a parent cgroup of its own (so tests never touch the
 * jobs of a server running on the same host), torn down completely.
 * @module
 */
import { detectDriver } from "../../cgroup/mod.ts";
import { testParentPath } from "../../cgroup/testing.ts";
import type { CgroupDriver } from "../../cgroup/mod.ts";
import { type EngineOptions, JobEngine } from "./engine.ts";

let counter = 0;

/** What a test gets besides the engine. */
export interface TestContext {
  dataDir: string;
  cgroups: CgroupDriver;
  /** The `--cgroup-parent` the jobs go below (see {@linkcode testParent}). */
  parent: string;
}

/**
 * A cgroup parent unique to this call: below the test runner's cgroup on
 * v1, at the hierarchy's root on v2 (see `testParentPath`).
 */
export function testParent(): string {
  // Not starting with "telejob-": a server listing stale job cgroups below
  // its own cgroup must not take a test's parent for one. Random, because
  // test modules run in parallel share the pid but not this module's state.
  return testParentPath(
    `jobs-test-${Deno.pid}-${++counter}-${crypto.randomUUID().slice(0, 8)}`,
  );
}

/** Removes the test's parent cgroup directories (they must be empty). */
export async function removeParent(cgroups: CgroupDriver): Promise<void> {
  for (const dir of cgroups.parentDirs) {
    await Deno.remove(dir).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

/** Runs `fn` with an open engine and tears everything down afterwards. */
export async function withEngine(
  fn: (engine: JobEngine, context: TestContext) => Promise<void>,
  options: Partial<EngineOptions> = {},
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-engine-test-" });
  const parent = testParent();
  const cgroups = await detectDriver({ parent });
  let engine: JobEngine | undefined;
  try {
    engine = await JobEngine.open({ dataDir, cgroups, ...options });
    await fn(engine, { dataDir, cgroups, parent });
  } finally {
    try {
      await engine?.shutdown({ graceMs: 0 });
      await removeParent(cgroups);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  }
}

/** Concatenates every chunk of a stream. */
export async function collect(
  chunks: AsyncIterable<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return concat(parts);
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Decodes UTF-8. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Pids of live (not zombie) processes whose command line contains `marker`. */
export async function pidsWithMarker(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (!cmdline.includes(marker)) continue;
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const state = stat.slice(
        stat.lastIndexOf(")") + 2,
        stat.lastIndexOf(")") + 3,
      );
      if (state !== "Z" && state !== "X") pids.push(Number(entry.name));
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

/** Polls `check` until it returns true (for set-up only, never a timing assertion). */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A job that escapes into a cgroup of its own making, as a job running as
 * root can: it starts `sleep MARKER` in the background, makes `nested/`
 * inside each of its own cgroups (every v1 hierarchy it is in, or its one
 * v2 cgroup), moves the sleep there, prints `ready`, then either execs
 * another `sleep MARKER` (`$2` = `stay`) or exits (`$2` = `exit`). Run as
 * `sh -c NESTED_ESCAPE sh MARKER stay|exit`.
 */
export const NESTED_ESCAPE = `
sleep "$1" & child=$!
while IFS=: read -r _ controllers path; do
  case "$path" in */telejob-*) ;; *) continue ;; esac
  dir=/sys/fs/cgroup\${controllers:+/$controllers}$path
  [ -d "$dir" ] || continue
  mkdir "$dir/nested" && echo "$child" > "$dir/nested/cgroup.procs" || exit 3
done < /proc/self/cgroup
grep -q /nested "/proc/$child/cgroup" || exit 4
echo ready
[ "$2" = exit ] && exit 0
exec sleep "$1"
`;

/** A number to pass to `sleep` that finds a test's processes in /proc. */
export function sleepMarker(): string {
  return String(3000000 + Math.floor(Math.random() * 1000000));
}
