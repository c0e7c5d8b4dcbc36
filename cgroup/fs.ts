/**
 * Thin reads and writes of the kernel's cgroup files, shared by both drivers.
 * Every kernel error is rethrown with the file's path and a hint, so that a
 * failure at start-up or in a job tells the operator what to fix.
 *
 * **Why many small file operations here are synchronous.** Reading a
 * counter, writing a limit to a fresh cgroup, listing a job's few pids,
 * removing an empty cgroup or stat-ing a file is a few microseconds of
 * kernel work (mostly answered from caches). The async form costs a round
 * trip through Deno's blocking thread pool, more than the work itself, and
 * queues behind every other job's file work; on the start path and at
 * every job's end those queued round trips were what the next start waited
 * for. So these operations run synchronously, here and in the drivers, the
 * engine and the output files; code elsewhere points back to this note.
 * Anything that may block for long (waiting for a busy cgroup, a retry)
 * stays asynchronous.
 * @module
 */

/** The prefix of every job cgroup's directory name. */
export const JOB_PREFIX = "telejob-";

/**
 * The leaf cgroup the server moves itself into on cgroup v2 when its own
 * cgroup must hold only child cgroups (the no-internal-processes rule). Never
 * listed as a job cgroup.
 */
export const SERVER_LEAF = "telejob-server";

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Whether the kernel said EBUSY. Deno reports it as a plain Error with
 * `code: "EBUSY"`, not as `Deno.errors.Busy`, so check both.
 */
export function isBusy(error: unknown): boolean {
  return error instanceof Deno.errors.Busy ||
    (error as { code?: unknown } | null)?.code === "EBUSY";
}

function hint(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) {
    return "run the server as root or give it a delegated cgroup";
  }
  if (error instanceof Deno.errors.NotFound) {
    return "check that the cgroup exists and the controller is enabled";
  }
  if (isBusy(error)) {
    return "the cgroup is still in use; retry once its processes have exited";
  }
  return "check the value and the kernel's cgroup documentation";
}

/** The errno names of the few error classes Deno throws without a `code`. */
const ERRNO_BY_CLASS: [new (...args: never[]) => Error, string][] = [
  [Deno.errors.NotFound, "ENOENT"],
  [Deno.errors.PermissionDenied, "EACCES"],
  [Deno.errors.AlreadyExists, "EEXIST"],
  [Deno.errors.Busy, "EBUSY"],
];

/** The errno name (`EACCES`, `EBUSY`, ...) of a kernel error, if it has one. */
function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return ERRNO_BY_CLASS.find(([kind]) => error instanceof kind)?.[1];
}

/**
 * A failed operation on a cgroup file, like Go's `os.PathError`: callers
 * test {@linkcode CgroupError.code} (`EBUSY`, `ENOSPC`, ...) instead of
 * matching the message, which is for people: what failed, with the path,
 * the kernel's reason and what to do.
 */
export class CgroupError extends Error {
  /** What was attempted, e.g. `write "1" to` or `create cgroup`. */
  readonly op: string;
  /** The cgroup file or directory. */
  readonly path: string;
  /** The kernel's errno name, e.g. `EACCES`; absent when none is known. */
  readonly code: string | undefined;

  /**
   * `op` and `path` read as one phrase (`write "1" to /sys/...`);
   * `reason` and `hint` replace the kernel's message and the hint derived
   * from `cause`.
   */
  constructor(
    op: string,
    path: string,
    options: { cause: unknown; reason?: string; hint?: string },
  ) {
    const { cause } = options;
    const reason = options.reason ??
      (cause instanceof Error ? cause.message : String(cause));
    super(
      `Failed to ${op} ${path}: ${reason}; ${options.hint ?? hint(cause)}`,
      { cause },
    );
    this.name = "CgroupError";
    this.op = op;
    this.path = path;
    this.code = errnoOf(cause);
  }
}

/**
 * Wraps a kernel error in a {@linkcode CgroupError}: `op` says what failed
 * (e.g. `write "1" to`), `path` where.
 */
export function cgroupError(
  op: string,
  path: string,
  error: unknown,
): CgroupError {
  return new CgroupError(op, path, { cause: error });
}

/** Writes `value` to a cgroup file in one write. */
export async function writeFile(path: string, value: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, value);
  } catch (error) {
    throw cgroupError(`write ${JSON.stringify(value)} to`, path, error);
  }
}

/**
 * Like {@linkcode writeFile}, synchronously, for the few limit files written
 * while a job starts (see the module doc).
 */
export function writeFileSync(path: string, value: string): void {
  try {
    Deno.writeTextFileSync(path, value);
  } catch (error) {
    throw cgroupError(`write ${JSON.stringify(value)} to`, path, error);
  }
}

/** Reads a cgroup file. */
export async function readFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw cgroupError("read", path, error);
  }
}

/** Reads a cgroup file, or returns `undefined` when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw cgroupError("read", path, error);
  }
}

/**
 * Reads a cgroup file synchronously, or returns `undefined` when it does not
 * exist. For small counter files (see the module doc).
 */
export function readOptionalSync(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw cgroupError("read", path, error);
  }
}

/** Whether `path` exists, synchronously (see the module doc). */
export function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw cgroupError("inspect", path, error);
  }
}

/** Parses a `cgroup.procs` file: one pid per line. */
export async function readPids(procsFile: string): Promise<number[]> {
  return parsePids(await readOptional(procsFile));
}

/**
 * Like {@linkcode readPids}, synchronously: a job's `cgroup.procs` lists its
 * few processes (see the module doc).
 */
export function readPidsSync(procsFile: string): number[] {
  return parsePids(readOptionalSync(procsFile));
}

function parsePids(text: string | undefined): number[] {
  if (text === undefined) return [];
  const pids: number[] = [];
  for (const line of text.split("\n")) {
    if (line !== "") pids.push(Number(line));
  }
  return pids;
}

/** Parses a flat-keyed file (`key value` per line) into a map. */
export function parseKeyed(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) map.set(key, Number(value));
  }
  return map;
}

/** Sends `signal` to `pid`, ignoring a process that has already gone. */
export function signalPid(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Creates `path` and its missing ancestors. */
export async function makeDir(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true });
  } catch (error) {
    throw cgroupError("create cgroup", path, error);
  }
}

/**
 * Creates the job cgroup directory `path`; an existing one is an error so that
 * two jobs never share a cgroup.
 */
export async function makeJobDir(path: string): Promise<void> {
  try {
    await Deno.mkdir(path);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new CgroupError("create cgroup", path, {
        cause: error,
        reason: "it already exists",
        hint: "remove the stale cgroup or pick another name",
      });
    }
    throw cgroupError("create cgroup", path, error);
  }
}

/**
 * Removes a cgroup directory, retrying with a short backoff while the kernel
 * says it is busy (its last processes are still exiting). A directory that is
 * already gone counts as removed.
 *
 * The first attempt is synchronous (~10 µs for an empty cgroup, at the end
 * of every job; see the module doc). Retries wait asynchronously.
 */
export async function removeDir(
  path: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let delay = 1;
  for (let attempt = 0;; attempt++) {
    try {
      if (attempt === 0) Deno.removeSync(path);
      else await Deno.remove(path);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      if (!isBusy(error) || Date.now() > deadline) {
        throw cgroupError("remove cgroup", path, error);
      }
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * The cgroup directories of the subtree rooted at `dir`, children before
 * their parents and `dir` last: the order to kill and remove them in. A job
 * running as root can create cgroups inside its own and move processes
 * there, so everything done to a job's cgroup is done to its whole subtree.
 * Synchronous: a leaf (the usual case) costs one stat, because a cgroup
 * directory's link count is 2 plus its number of child cgroups. A missing
 * `dir` gives an empty list.
 */
export function subtreeSync(dir: string): string[] {
  let links: number | null;
  try {
    links = Deno.lstatSync(dir).nlink;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw cgroupError("inspect", dir, error);
  }
  if (links === 2) return [dir];
  const dirs: string[] = [];
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isDirectory) dirs.push(...subtreeSync(`${dir}/${entry.name}`));
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return dirs;
    throw cgroupError("list", dir, error);
  }
  dirs.push(dir);
  return dirs;
}

/** Pids in every cgroup of the subtree at `dir` (see {@linkcode subtreeSync}). */
export function subtreePidsSync(dir: string): number[] {
  const dirs = subtreeSync(dir);
  if (dirs.length === 1) return readPidsSync(`${dir}/cgroup.procs`);
  return [...new Set(dirs.flatMap((d) => readPidsSync(`${d}/cgroup.procs`)))];
}

/**
 * Removes the cgroup at `dir` with every cgroup below it, bottom-up (the
 * kernel refuses to remove a cgroup that has children), retrying each while
 * busy. The first attempt is the plain removal of a leaf.
 */
export async function removeTree(
  dir: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  try {
    Deno.removeSync(dir);
    return;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (!isBusy(error)) throw cgroupError("remove cgroup", dir, error);
  }
  for (const child of subtreeSync(dir)) await removeDir(child, options);
}

/** Names of the job cgroup directories directly below `dir`. */
export async function listJobDirs(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (
        entry.isDirectory && entry.name.startsWith(JOB_PREFIX) &&
        entry.name !== SERVER_LEAF
      ) {
        names.push(entry.name);
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw cgroupError("list", dir, error);
  }
  return names.sort();
}

/**
 * Normalizes a job cgroup name: the driver accepts `42` or `telejob-42` and
 * always uses `telejob-42`. Only names that are safe as a single directory
 * component are accepted.
 */
export function jobDirName(name: string): string {
  const full = name.startsWith(JOB_PREFIX) ? name : JOB_PREFIX + name;
  const rest = full.slice(JOB_PREFIX.length);
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(rest) || rest === "." || rest === "..") {
    throw new Error(
      `Invalid job cgroup name ${
        JSON.stringify(name)
      }: use letters, digits, ".", "_" or "-" (at most 200)`,
    );
  }
  if (full === SERVER_LEAF) {
    throw new Error(
      `Invalid job cgroup name ${
        JSON.stringify(name)
      }: "${SERVER_LEAF}" is reserved for the server itself`,
    );
  }
  return full;
}

/** Joins a hierarchy mount point and a cgroup path (`/a/b`). */
export function joinCgroupPath(mount: string, cgroupPath: string): string {
  const rel = cgroupPath.split("/").filter((part) => part !== "").join("/");
  return rel === "" ? mount : `${mount.replace(/\/$/, "")}/${rel}`;
}

/**
 * Resolves `--cgroup-parent` against the cgroup this process runs in: an
 * absolute path (`/a/b`) is taken from the hierarchy's root, a relative one
 * (`a/b`) is below this process's own cgroup. No `..` is allowed, so the
 * result never leaves the hierarchy.
 */
export function resolveParent(own: string, parent: string | undefined): string {
  if (parent === undefined || parent === "") return normalize(own);
  const parts = parent.split("/").filter((part) => part !== "");
  if (parts.some((part) => part === "." || part === "..")) {
    throw new Error(
      `Invalid --cgroup-parent ${
        JSON.stringify(parent)
      }: "." and ".." are not allowed; use a path like /telejob or telejob`,
    );
  }
  if (parent.startsWith("/")) return normalize(parent);
  return normalize(`${own}/${parts.join("/")}`);
}

function normalize(path: string): string {
  return "/" + path.split("/").filter((part) => part !== "").join("/");
}
