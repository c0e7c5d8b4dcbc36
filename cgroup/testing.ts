/**
 * Test helpers for the cgroup tests: a driver below a parent cgroup unique
 * to the test run (so parallel runs never see each other's job cgroups) and
 * a way to run a real job through the startup shim. Everything created is
 * removed again.
 * @module
 */
import type { CgroupDriver, JobCgroup } from "./types.ts";
import { detectDriver } from "./mod.ts";
import { removeDir } from "./fs.ts";
import { parseMountinfo } from "./mounts.ts";
import { hasV1Controllers } from "./v1.ts";
import { buildShim } from "../shim/build.ts";
import { type RunAs, shimCommand } from "./shim.ts";

/** The identity the cgroup tests run jobs as: root, as they test limits. */
export const ROOT: RunAs = { uid: 0, gid: 0, groups: [] };

/** A driver whose parent cgroup belongs to one test. */
export interface TestDriver extends AsyncDisposable {
  /** The driver, below the test's own parent cgroup. */
  driver: CgroupDriver;
  /** The parent directories (one per v1 hierarchy, one on v2). */
  parentDirs: string[];
}

let counter = 0;

/** Whether the controllers live in the unified hierarchy (pure cgroup v2). */
export function isV2Host(): boolean {
  const mounts = parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo"));
  return !hasV1Controllers(mounts);
}

/**
 * A `--cgroup-parent` for a test's own jobs named `name`: on cgroup v1
 * below this process's cgroup in each hierarchy, as before; on cgroup v2
 * at the hierarchy's root (`/name`), because the test runner's own cgroup
 * is usually shared (a login session, a CI agent) and cgroup v2 forbids
 * controllers below a cgroup that holds processes. A user on such a host
 * gets the same: `/telejob` at the root.
 */
export function testParentPath(name: string): string {
  return isV2Host() ? `/${name}` : name;
}

/**
 * Detects the host's driver with a fresh parent cgroup of the test's own
 * (see {@linkcode testParentPath}). Disposing it kills and removes every
 * job cgroup left in it and then the parent itself.
 */
export async function testDriver(): Promise<TestDriver> {
  const parent = testParentPath(
    `telejobtest-${Deno.pid}-${Date.now().toString(36)}-${counter++}`,
  );
  const driver = await detectDriver({ parent });
  const parentDirs = [...driver.parentDirs];
  return {
    driver,
    parentDirs,
    async [Symbol.asyncDispose]() {
      for (const name of await driver.list()) {
        const cgroup = driver.open(name);
        await cgroup.kill();
        await cgroup.remove();
      }
      for (const dir of parentDirs) await removeDir(dir);
    },
  };
}

/** A job started through the shim. */
export interface TestJob extends AsyncDisposable {
  /** The spawned shim (then the command). */
  child: Deno.ChildProcess;
  /** The job's output file. */
  outputPath: string;
  /** Reads the output file as text. */
  output(): Promise<string>;
}

/**
 * Runs `command` with `args` in `cgroup` the way the engine does: through the
 * shim (which starts a new session), stdio to /dev/null, output appended to a temporary file.
 * Disposing kills the cgroup's processes, reaps the child and deletes the
 * output file.
 */
export async function runJob(
  cgroup: JobCgroup,
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<TestJob> {
  const outputPath = await Deno.makeTempFile({
    prefix: "telejob-cgroup-test-",
  });
  const shim = shimCommand(command, args, {
    shim: await buildShim(),
    procsFiles: cgroup.procsFiles,
    outputPath,
    cwd: "/",
    env: { PATH: "/usr/bin:/bin", ...options.env },
    runAs: ROOT,
  });
  const child = new Deno.Command(shim.program, {
    args: shim.args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    clearEnv: true,
  }).spawn();
  return {
    child,
    outputPath,
    output: () => Deno.readTextFile(outputPath),
    async [Symbol.asyncDispose]() {
      await cgroup.kill();
      await child.status;
      await Deno.remove(outputPath);
    },
  };
}

/** Waits until `predicate` holds, polling; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 20000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether a process is alive (exists and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(
      stat.lastIndexOf(")") + 2,
      stat.lastIndexOf(")") + 3,
    );
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * A perl fork bomb for the pids tests: each process forks up to 3 children
 * to a depth of 4, so 121 processes at most even without a limit (a broken
 * limit cannot take the host down). Prints `fork failed` once a fork fails.
 */
export const FORK_BOMB = `
$| = 1;
my $depth = 0;
my $failed = 0;
LEVEL: while ($depth < 4) {
  for (1 .. 3) {
    my $pid = fork();
    if (!defined $pid) { $failed++; next; }
    if ($pid == 0) { $depth++; $failed = 0; next LEVEL; }
  }
  last;
}
print "fork failed\\n" if $failed;
sleep 1 while 1;
`;

/**
 * Writes a fake hierarchy of directories and files (relative path →
 * content) in a fresh temporary directory, for logic that reads and writes
 * cgroup files; the caller removes it.
 */
export async function fakeTree(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "telejob-v2-fake-" });
  for (const [path, content] of Object.entries(files)) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, content);
  }
  return root;
}

/** A whole-disk block device of this host: its path and MAJ:MIN. */
export function wholeDisk():
  | { path: string; major: number; minor: number }
  | undefined {
  for (const entry of Deno.readDirSync("/sys/block")) {
    const path = `/dev/${entry.name}`;
    try {
      if (!Deno.statSync(path).isBlockDevice) continue;
    } catch {
      continue;
    }
    const [major, minor] = Deno.readTextFileSync(`/sys/block/${entry.name}/dev`)
      .trim().split(":").map(Number);
    return { path, major, minor };
  }
  return undefined;
}
