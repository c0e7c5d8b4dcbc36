/**
 * The cgroup v2 (unified hierarchy) driver.
 *
 * Job cgroups are created as `<parent>/telejob-<name>`, with the cpu, memory,
 * io and pids controllers enabled in the parent's `cgroup.subtree_control`.
 *
 * The no-internal-processes rule: a non-root cgroup that has controllers
 * enabled for its children may not hold processes itself. When the server
 * runs in a non-root cgroup that holds processes (as under systemd with
 * `Delegate=yes`) and job cgroups go below that cgroup, the driver first
 * moves this process into the leaf `<parent>/telejob-server`, then enables
 * the controllers, then creates job cgroups as siblings of that leaf. If
 * other processes remain in the parent, enabling the controllers fails and
 * the error says to point `--cgroup-parent` at a cgroup of its own.
 * @module
 */
import { emptyUsage } from "./types.ts";
import type { CgroupDriver, JobCgroup, Limits, Usage } from "./types.ts";
import {
  cgroupError,
  exists,
  existsSync,
  isBusy,
  jobDirName,
  joinCgroupPath,
  listJobDirs,
  makeDir,
  makeJobDir,
  parseKeyed,
  readFile,
  readOptional,
  readOptionalSync,
  readPids,
  readPidsSync,
  removeDir,
  resolveParent,
  SERVER_LEAF,
  signalPid,
  sleep,
  writeFile,
  writeFileSync,
} from "./fs.ts";
import {
  type CgroupMembership,
  type CgroupMount,
  pathBelowMount,
  readSelf,
} from "./mounts.ts";

/** The v2 controllers the driver enables for job cgroups. */
export const V2_CONTROLLERS = ["cpu", "memory", "io", "pids"] as const;

/** Options of {@linkcode createV2Driver}. */
export interface V2DriverOptions {
  /**
   * `--cgroup-parent`: absolute (`/a/b`, from the hierarchy's root) or
   * relative (`a/b`, below this process's own cgroup). Default: this
   * process's own cgroup.
   */
  parent?: string;
  /** Parsed mounts; read from `/proc/self/mountinfo` when absent. */
  mounts?: CgroupMount[];
  /** Parsed memberships; read from `/proc/self/cgroup` when absent. */
  memberships?: CgroupMembership[];
  /** The pid to move out of the way of job cgroups (default: this process). */
  pid?: number;
  /**
   * The cgroup2 mount to use, skipping discovery (which insists on a mount
   * with controllers). Lets tests use the controller-less cgroup2 mount of a
   * hybrid host for limit-free job cgroups.
   */
  mount?: CgroupMount;
}

/**
 * The controller-bearing cgroup2 mount, preferring `/sys/fs/cgroup`; a
 * cgroup2 mount without any of cpu, memory, io and pids
 * (`/sys/fs/cgroup/unified` on a hybrid host, which holds only hugetlb) does
 * not count.
 */
export async function findV2Mount(
  mounts: readonly CgroupMount[],
): Promise<CgroupMount | undefined> {
  const candidates = mounts.filter((m) => m.version === 2).sort((a, b) =>
    Number(b.mountPoint === "/sys/fs/cgroup") -
    Number(a.mountPoint === "/sys/fs/cgroup")
  );
  for (const mount of candidates) {
    const controllers = await readOptional(
      `${mount.mountPoint}/cgroup.controllers`,
    );
    const available = words(controllers);
    if (V2_CONTROLLERS.some((c) => available.includes(c))) return mount;
  }
  return undefined;
}

function words(text: string | undefined): string[] {
  return (text ?? "").split(/\s+/).filter((w) => w !== "");
}

/**
 * Finds the unified hierarchy, creates the parent cgroup if it is missing and
 * enables the cpu, memory, io and pids controllers for its children,
 * respecting the no-internal-processes rule (see the module doc).
 */
export async function createV2Driver(
  options: V2DriverOptions = {},
): Promise<V2Driver> {
  let { mounts, memberships } = options;
  if (!mounts || !memberships) {
    const self = await readSelf();
    mounts ??= self.mounts;
    memberships ??= self.memberships;
  }
  const mount = options.mount ?? await findV2Mount(mounts);
  if (!mount) {
    throw new Error(
      "No cgroup v2 hierarchy with controllers is mounted; mount cgroup2 at /sys/fs/cgroup (or use a cgroup v1 host)",
    );
  }
  const membership = memberships.find((m) => m.id === 0);
  if (!membership) {
    throw new Error(
      "This process is not in the cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup); check the cgroup mounts",
    );
  }
  const own = pathBelowMount(mount, membership.path);
  if (own === undefined && !options.parent?.startsWith("/")) {
    throw new Error(
      `This process's cgroup ${membership.path} is not visible below ${mount.mountPoint} (root ${mount.root}); mount the hierarchy's root or pass an absolute --cgroup-parent`,
    );
  }
  const parentPath = resolveParent(own ?? "/", options.parent);
  const ownDir = own === undefined
    ? undefined
    : joinCgroupPath(mount.mountPoint, own);
  const parentDir = joinCgroupPath(mount.mountPoint, parentPath);
  await makeDir(parentDir);

  // Every cgroup from our own down to the parent must pass the controllers on.
  const chain = [parentDir];
  if (ownDir !== undefined && parentDir.startsWith(ownDir + "/")) {
    chain.unshift(ownDir);
    const below = parentDir.slice(ownDir.length + 1).split("/");
    for (let i = 1; i < below.length; i++) {
      chain.splice(i, 0, `${ownDir}/${below.slice(0, i).join("/")}`);
    }
  }
  const pid = options.pid ?? Deno.pid;
  let serverLeaf: string | undefined;
  // Moves this process out of its own cgroup into the leaf, if it is there.
  const leaveOwnCgroup = async (dir: string): Promise<boolean> => {
    if (dir !== ownDir || serverLeaf !== undefined) return false;
    if (!(await readPids(`${dir}/cgroup.procs`)).includes(pid)) return false;
    serverLeaf = `${dir}/${SERVER_LEAF}`;
    await makeDir(serverLeaf);
    await writeFile(`${serverLeaf}/cgroup.procs`, String(pid));
    return true;
  };
  for (const dir of chain) {
    const available = words(await readFile(`${dir}/cgroup.controllers`));
    const enabled = words(await readFile(`${dir}/cgroup.subtree_control`));
    const missing = V2_CONTROLLERS.filter((c) =>
      available.includes(c) && !enabled.includes(c)
    );
    if (missing.length === 0) continue;
    // The real root may hold processes; any other cgroup may not.
    if (dir !== mount.mountPoint.replace(/\/$/, "")) await leaveOwnCgroup(dir);
    const file = `${dir}/cgroup.subtree_control`;
    const value = missing.map((c) => `+${c}`).join(" ");
    try {
      try {
        await Deno.writeTextFile(file, value);
      } catch (error) {
        // The root of a cgroup namespace looks like the root but is not.
        if (!isBusy(error) || !(await leaveOwnCgroup(dir))) throw error;
        await Deno.writeTextFile(file, value);
      }
    } catch (error) {
      if (isBusy(error)) {
        throw new Error(
          `Failed to enable the ${
            missing.join(", ")
          } controllers in ${file}: the cgroup holds other processes (pids ${
            (await readPids(`${dir}/cgroup.procs`)).join(" ")
          }) and cgroup v2 forbids controllers on a cgroup with processes; point --cgroup-parent at an empty cgroup of its own`,
          { cause: error },
        );
      }
      throw cgroupError(`enable ${missing.join(", ")} in ${file}`, error);
    }
  }
  const controllers = words(
    await readFile(`${parentDir}/cgroup.subtree_control`),
  );
  return new V2Driver(parentDir, controllers, serverLeaf);
}

/** Creates job cgroups below one parent in the unified hierarchy. */
export class V2Driver implements CgroupDriver {
  /** Always 2. */
  readonly version = 2 as const;
  /** Human-readable location of job cgroups. */
  readonly parent: string;
  /** The parent directory. */
  readonly parentDir: string;
  /** Controllers enabled for the parent's children. */
  readonly controllers: readonly string[];
  /** The leaf this process was moved into, if it had to move. */
  readonly serverLeaf?: string;

  /** Use {@linkcode createV2Driver}; this constructor does no I/O. */
  constructor(
    parentDir: string,
    controllers: readonly string[],
    serverLeaf?: string,
  ) {
    this.parentDir = parentDir;
    this.controllers = controllers;
    this.serverLeaf = serverLeaf;
    this.parent = `cgroup v2: ${parentDir} (${controllers.join(" ")})`;
  }

  /** The parent directory, as a list for symmetry with v1. */
  get parentDirs(): string[] {
    return [this.parentDir];
  }

  /** Creates `telejob-<name>` below the parent and applies `limits`. */
  async create(name: string, limits: Limits): Promise<V2JobCgroup> {
    const job = this.open(name);
    this.#checkControllers(limits);
    await makeJobDir(job.dir);
    try {
      applyLimits(job.dir, limits);
    } catch (error) {
      await removeDir(job.dir).catch(() => {});
      throw error;
    }
    return job;
  }

  /** The job cgroup `telejob-<name>`, without touching the kernel. */
  open(name: string): V2JobCgroup {
    const dirName = jobDirName(name);
    return new V2JobCgroup(dirName, `${this.parentDir}/${dirName}`);
  }

  /** Job cgroup names below the parent (never the server's own leaf). */
  list(): Promise<string[]> {
    return listJobDirs(this.parentDir);
  }

  #checkControllers(limits: Limits): void {
    const need: [boolean, string, string][] = [
      [limits.cpu !== undefined, "cpu", "a CPU limit"],
      [limits.memoryBytes !== undefined, "memory", "a memory limit"],
      [limits.pids !== undefined, "pids", "a pids limit"],
      [(limits.io?.length ?? 0) > 0, "io", "an I/O limit"],
    ];
    for (const [wanted, controller, what] of need) {
      if (wanted && !this.controllers.includes(controller)) {
        throw new Error(
          `Cannot apply ${what}: the ${controller} controller is not enabled for ${this.parentDir}; delegate it to the server's cgroup (systemd: Delegate=yes) or drop the limit`,
        );
      }
    }
  }
}

/**
 * Writes the job's limits, synchronously as on v1: each write is a few
 * microseconds of kernel work on a fresh, empty cgroup, less than a round
 * trip through Deno's blocking thread pool (see `writeFileSync`).
 */
function applyLimits(dir: string, limits: Limits): void {
  if (limits.cpu !== undefined) {
    const quota = Math.max(1000, Math.round(limits.cpu * 100000));
    writeFileSync(`${dir}/cpu.max`, `${quota} 100000`);
  }
  if (limits.memoryBytes !== undefined) {
    writeFileSync(`${dir}/memory.max`, String(limits.memoryBytes));
    // memory.swap.max is absent when the kernel has no swap accounting.
    if (existsSync(`${dir}/memory.swap.max`)) {
      writeFileSync(`${dir}/memory.swap.max`, "0");
    }
  }
  if (limits.pids !== undefined) {
    writeFileSync(`${dir}/pids.max`, String(limits.pids));
  }
  for (const io of limits.io ?? []) {
    const keys = (["rbps", "wbps", "riops", "wiops"] as const)
      .filter((k) => io[k] !== undefined)
      .map((k) => `${k}=${io[k]}`);
    if (keys.length > 0) {
      writeFileSync(
        `${dir}/io.max`,
        `${io.major}:${io.minor} ${keys.join(" ")}`,
      );
    }
  }
}

/** One job's cgroup in the unified hierarchy. */
export class V2JobCgroup implements JobCgroup {
  /** `telejob-<name>`. */
  readonly name: string;
  /** The job's cgroup directory. */
  readonly dir: string;
  /** The one `cgroup.procs` file. */
  readonly procsFiles: readonly string[];

  /** Use {@linkcode V2Driver.open} or {@linkcode V2Driver.create}. */
  constructor(name: string, dir: string) {
    this.name = name;
    this.dir = dir;
    this.procsFiles = [`${dir}/cgroup.procs`];
  }

  /** Pids in the cgroup, read synchronously (microseconds; see usage()). */
  pids(): Promise<number[]> {
    try {
      return Promise.resolve(readPidsSync(this.procsFiles[0]));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Sends `signal` to every process of the job. */
  async signal(signal: Deno.Signal): Promise<void> {
    for (const pid of await this.pids()) signalPid(pid, signal);
  }

  /**
   * Writes `cgroup.kill` (the kernel kills every process, including ones
   * forking meanwhile) and waits until the cgroup is empty. Kernels before
   * 5.14 have no `cgroup.kill`: there it freezes with `cgroup.freeze`,
   * SIGKILLs every process, thaws and repeats until empty.
   */
  async kill(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 10000);
    // At a job's end the cgroup is usually empty already: done in one read.
    if ((await this.pids()).length === 0) return;
    const hasKill = await exists(`${this.dir}/cgroup.kill`);
    const hasFreeze = await exists(`${this.dir}/cgroup.freeze`);
    let delay = 1;
    for (;;) {
      if ((await this.pids()).length === 0) return;
      if (hasKill) {
        await writeFile(`${this.dir}/cgroup.kill`, "1");
      } else {
        if (hasFreeze) await this.#freeze(deadline);
        try {
          for (const pid of await this.pids()) signalPid(pid, "SIGKILL");
        } finally {
          if (hasFreeze) await writeFile(`${this.dir}/cgroup.freeze`, "0");
        }
      }
      if ((await this.pids()).length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `Failed to kill every process of cgroup ${this.name}: pids ${
            (await this.pids()).join(" ")
          } remain; check for processes stuck in uninterruptible sleep (ps -o stat)`,
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }

  async #freeze(deadline: number): Promise<void> {
    await writeFile(`${this.dir}/cgroup.freeze`, "1");
    const until = Math.min(deadline, Date.now() + 1000);
    let delay = 1;
    while (Date.now() < until) {
      const events = parseKeyed(await readFile(`${this.dir}/cgroup.events`));
      if (events.get("frozen") === 1) return;
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }

  /**
   * The `oom_kill` counter of `memory.events` (0 without memory). Read
   * synchronously, like {@linkcode usage}.
   */
  // deno-lint-ignore require-await
  async oomKills(): Promise<number> {
    const text = readOptionalSync(`${this.dir}/memory.events`);
    return text === undefined ? 0 : parseKeyed(text).get("oom_kill") ?? 0;
  }

  /**
   * cpu.stat usage_usec, memory.peak and io.stat rbytes/wbytes. Read
   * synchronously: each is a few microseconds of kernel work, less than one
   * round trip through Deno's blocking thread pool, and at the end of a
   * short job queued round trips delayed the next job's start.
   */
  // deno-lint-ignore require-await
  async usage(): Promise<Usage> {
    const usage = emptyUsage();
    const cpu = readOptionalSync(`${this.dir}/cpu.stat`);
    if (cpu !== undefined) {
      usage.cpuUsec = parseKeyed(cpu).get("usage_usec") ?? 0;
    }
    const peak = readOptionalSync(`${this.dir}/memory.peak`);
    if (peak !== undefined) usage.memoryPeakBytes = Number(peak) || 0;
    const io = readOptionalSync(`${this.dir}/io.stat`);
    for (const line of (io ?? "").split("\n")) {
      for (const field of line.trim().split(/\s+/).slice(1)) {
        const [key, value] = field.split("=");
        if (key === "rbytes") usage.ioReadBytes += Number(value);
        if (key === "wbytes") usage.ioWriteBytes += Number(value);
      }
    }
    return usage;
  }

  /** Removes the cgroup directory, retrying while busy. */
  remove(): Promise<void> {
    return removeDir(this.dir);
  }
}
