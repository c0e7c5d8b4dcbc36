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
import { CFS_PERIOD_US, cpuQuotaUs, emptyUsage, limitNeeds } from "./types.ts";
import type { CgroupDriver, JobCgroup, Limits, Usage } from "./types.ts";
import {
  cgroupError,
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
  removeDir,
  removeTree,
  resolveParent,
  SERVER_LEAF,
  signalPid,
  subtreePidsSync,
  writeFile,
  writeFileSync,
} from "./fs.ts";
import { JobError } from "../common/errors.ts";
import {
  choosePlacement,
  isRealRoot,
  type Placement,
  V2_CONTROLLERS,
  words,
} from "./v2_placement.ts";

export {
  DEFAULT_V2_PARENT,
  type Placement,
  V2_CONTROLLERS,
} from "./v2_placement.ts";
import {
  type CgroupMembership,
  type CgroupMount,
  pathBelowMount,
  selfLayout,
} from "./mounts.ts";
import { killUntilEmpty } from "./kill.ts";

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
   * The server's limits: start-up fails when one needs a controller the
   * parent cannot get.
   */
  limits?: Limits;
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

/**
 * Finds the unified hierarchy, picks the parent cgroup (see
 * {@linkcode choosePlacement}), creates it if it is missing and enables the
 * cpu, memory, io and pids controllers for its children, respecting the
 * no-internal-processes rule (see the module doc). Start-up fails, naming
 * the controller, the file and the fix, when `options.limits` needs a
 * controller the parent cannot get.
 */
export async function createV2Driver(
  options: V2DriverOptions = {},
): Promise<V2Driver> {
  const { mounts, memberships } = await selfLayout(options);
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
  const top = mount.mountPoint.replace(/(.)\/$/, "$1");
  const own = pathBelowMount(mount, membership.path);
  const pid = options.pid ?? Deno.pid;
  let placement: Placement;
  if (options.parent !== undefined && options.parent !== "") {
    if (own === undefined && !options.parent.startsWith("/")) {
      throw new Error(
        `This process's cgroup ${membership.path} is not visible below ${mount.mountPoint} (root ${mount.root}); mount the hierarchy's root or pass an absolute --cgroup-parent`,
      );
    }
    placement = {
      path: resolveParent(own ?? "/", options.parent),
      kind: "flag",
      reason: `--cgroup-parent ${options.parent}`,
    };
  } else {
    placement = await choosePlacement(top, own, pid);
  }
  const ownPath = placement.kind === "own" ? placement.path : own;
  // Our own cgroup and those below it count as ours when the jobs go there
  // (delegated, or a relative --cgroup-parent), not on the way to an
  // absolute parent elsewhere.
  const ownChain = placement.kind === "own" ||
    (placement.kind === "flag" && !options.parent!.startsWith("/"));
  const ownDir = ownPath === undefined
    ? undefined
    : joinCgroupPath(top, ownPath);
  const parentDir = joinCgroupPath(top, placement.path);

  // The cgroups from the root down to the parent whose controllers we may
  // enable: the real root, the ones this call creates, and our own cgroup
  // and below. A shared cgroup on the way (a systemd slice) is not ours to
  // change; what it does not pass on fails the limit check below.
  const chain: string[] = [];
  const parts = placement.path.split("/").filter((p) => p !== "");
  for (let i = 0; i <= parts.length; i++) {
    const dir = joinCgroupPath(top, "/" + parts.slice(0, i).join("/"));
    const mine = dir === parentDir ||
      (ownChain && ownDir !== undefined &&
        (dir === ownDir || dir.startsWith(ownDir + "/"))) ||
      (i === 0 && isRealRoot(top)) || !existsSync(dir);
    if (mine) chain.push(dir);
  }
  await makeDir(parentDir);

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
    if (!isRealRoot(dir)) await leaveOwnCgroup(dir);
    const file = `${dir}/cgroup.subtree_control`;
    const value = missing.map((c) => `+${c}`).join(" ");
    try {
      try {
        await Deno.writeTextFile(file, value);
      } catch (error) {
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
      throw cgroupError(`enable ${missing.join(", ")} in`, file, error);
    }
  }
  const controllers = words(
    await readFile(`${parentDir}/cgroup.subtree_control`),
  );
  const driver = new V2Driver(parentDir, controllers, serverLeaf, placement);
  driver.checkServerLimits(options.limits ?? {});
  return driver;
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
  /** Why job cgroups go where they go. */
  readonly placement: string;

  /** Use {@linkcode createV2Driver}; this constructor does no I/O. */
  constructor(
    parentDir: string,
    controllers: readonly string[],
    serverLeaf?: string,
    placement?: Placement,
  ) {
    this.parentDir = parentDir;
    this.controllers = controllers;
    this.serverLeaf = serverLeaf;
    this.parent = `cgroup v2: ${parentDir} (${controllers.join(" ")})`;
    this.placement = placement?.reason ?? `job cgroups go below ${parentDir}`;
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

  /**
   * A job cgroup by the absolute directory recorded when it was created, so
   * that a restarted server finds it below whatever parent it used then.
   */
  openPaths(paths: readonly string[]): V2JobCgroup {
    const dir = paths[0];
    if (paths.length !== 1 || !dir?.startsWith("/")) {
      throw new Error(
        `Cannot open job cgroup ${
          JSON.stringify(paths)
        }: cgroup v2 takes one absolute directory`,
      );
    }
    return new V2JobCgroup(
      jobDirName(dir.slice(dir.lastIndexOf("/") + 1)),
      dir,
    );
  }

  /** Job cgroup names below the parent (never the server's own leaf). */
  list(): Promise<string[]> {
    return listJobDirs(this.parentDir);
  }

  /**
   * Start-up check of the server's own limits (the defaults every job
   * gets): a controller they need that the parent cannot pass on makes the
   * server refuse to start, naming the controller, the file and the fix.
   */
  checkServerLimits(limits: Limits): void {
    const missing = limitNeeds(limits).find((need) =>
      !this.controllers.includes(need.controller)
    );
    if (missing === undefined) return;
    const { controller, flag } = missing;
    throw new Error(
      `The server's ${flag} needs the ${controller} controller, but ${this.parentDir}/cgroup.subtree_control does not enable it (it is not in ${this.parentDir}/cgroup.controllers: a cgroup above does not pass it on, or the kernel lacks it); enable it from the root down (echo +${controller} > cgroup.subtree_control at each level), run the server where it is delegated (systemd: Delegate=${controller}) or drop ${flag}`,
    );
  }

  #checkControllers(limits: Limits): void {
    const missing = limitNeeds(limits).find((need) =>
      !this.controllers.includes(need.controller)
    );
    if (missing === undefined) return;
    const { controller, what } = missing;
    throw new JobError(
      "failed_precondition",
      `This server cannot enforce ${what}: the cgroup v2 ${controller} controller is not enabled for its job cgroups (${this.parentDir}); drop the limit or ask the operator to delegate the ${controller} controller`,
    );
  }
}

/**
 * Writes the job's limits, synchronously as on v1 (see the `cgroup/fs.ts` module doc).
 */
function applyLimits(dir: string, limits: Limits): void {
  if (limits.cpu !== undefined) {
    writeFileSync(
      `${dir}/cpu.max`,
      `${cpuQuotaUs(limits.cpu)} ${CFS_PERIOD_US}`,
    );
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
  /** The one absolute directory, as the store records it. */
  readonly paths: readonly string[];

  /** Use {@linkcode V2Driver.open} or {@linkcode V2Driver.create}. */
  constructor(name: string, dir: string) {
    this.name = name;
    this.dir = dir;
    this.procsFiles = [`${dir}/cgroup.procs`];
    this.paths = [dir];
  }

  /**
   * Pids in the cgroup and every cgroup the job made below it, read
   * synchronously (microseconds; see usage()).
   */
  pids(): number[] {
    return subtreePidsSync(this.dir);
  }

  /**
   * Whether any process is left in the job's subtree: `populated` of
   * `cgroup.events` counts descendants too, where `cgroup.procs` does not.
   * A cgroup that is gone is empty.
   */
  #populated(): boolean {
    const events = readOptionalSync(`${this.dir}/cgroup.events`);
    return events !== undefined && parseKeyed(events).get("populated") === 1;
  }

  /** Sends `signal` to every process of the job. */
  signal(signal: Deno.Signal): void {
    for (const pid of subtreePidsSync(this.dir)) signalPid(pid, signal);
  }

  /**
   * Writes `cgroup.kill` (the kernel kills every process of the subtree,
   * including ones forking meanwhile or hiding in a cgroup the job made
   * below its own) and waits until `cgroup.events` says the subtree is
   * empty. Kernels before 5.14 have no `cgroup.kill`: there it freezes with
   * `cgroup.freeze` (which freezes descendants too), SIGKILLs every process
   * of the subtree, thaws and repeats until empty.
   */
  async kill(options: { timeoutMs?: number } = {}): Promise<void> {
    // At a job's end the cgroup is usually empty already: done in one read.
    if (!this.#populated()) return;
    const kill = `${this.dir}/cgroup.kill`;
    const freeze = `${this.dir}/cgroup.freeze`;
    await killUntilEmpty({
      name: this.name,
      populated: () => this.#populated(),
      pids: () => subtreePidsSync(this.dir),
      killAll: existsSync(kill) ? () => writeFile(kill, "1") : undefined,
      freezer: existsSync(freeze)
        ? {
          freeze: () => writeFile(freeze, "1"),
          frozen: async () =>
            parseKeyed(await readFile(`${this.dir}/cgroup.events`))
              .get("frozen") === 1,
          thaw: () => writeFile(freeze, "0"),
        }
        : undefined,
    }, options);
  }

  /**
   * The `oom_kill` counter of `memory.events` (0 without memory). Read
   * synchronously, like {@linkcode usage}.
   */
  oomKills(): number {
    const text = readOptionalSync(`${this.dir}/memory.events`);
    return text === undefined ? 0 : parseKeyed(text).get("oom_kill") ?? 0;
  }

  /**
   * cpu.stat usage_usec, memory.peak and io.stat rbytes/wbytes. Read
   * synchronously (see the `cgroup/fs.ts` module doc).
   */
  usage(): Usage {
    return this.#usage();
  }

  #usage(): Usage {
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

  /**
   * Removes the cgroup directory and any cgroup the job made below it,
   * bottom-up, retrying while busy.
   */
  remove(): Promise<void> {
    return removeTree(this.dir);
  }
}
