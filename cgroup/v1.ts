/**
 * The cgroup v1 driver, for legacy and hybrid hosts where the v1 hierarchies
 * hold the controllers (one mount per controller, or co-mounts such as
 * `cpu,cpuacct`).
 *
 * A job gets one directory per hierarchy it uses (cpu, cpuacct, memory, blkio,
 * pids, freezer — whichever are mounted), each below the parent cgroup of that
 * hierarchy. v1 has no `cgroup.kill`, so {@linkcode V1JobCgroup.kill} freezes
 * the cgroup, SIGKILLs every process, thaws it and repeats until it is empty:
 * a frozen process cannot fork, so none can slip through.
 * @module
 */
import {
  CFS_PERIOD_US,
  cpuQuotaUs,
  emptyUsage,
  limitNeeds,
  V1_HIERARCHY_OF,
} from "./types.ts";
import type { CgroupDriver, JobCgroup, Limits, Usage } from "./types.ts";
import {
  existsSync,
  jobDirName,
  joinCgroupPath,
  listJobDirs,
  makeDir,
  makeJobDir,
  parseKeyed,
  readFile,
  readOptionalSync,
  readPidsSync,
  removeDir,
  removeTree,
  resolveParent,
  signalPid,
  subtreeSync,
  writeFile,
  writeFileSync,
} from "./fs.ts";
import { JobError } from "../common/errors.ts";
import {
  type CgroupMembership,
  type CgroupMount,
  pathBelowMount,
  selfLayout,
} from "./mounts.ts";
import { killUntilEmpty } from "./kill.ts";

/** A v1 controller the driver uses. */
export type V1Controller =
  | typeof V1_HIERARCHY_OF[keyof typeof V1_HIERARCHY_OF]
  | "cpuacct"
  | "freezer";

/**
 * The v1 controllers the driver uses: the limits' hierarchies, cpuacct for
 * CPU usage and the freezer for kill.
 */
export const V1_CONTROLLERS: readonly V1Controller[] = [
  ...Object.values(V1_HIERARCHY_OF),
  "cpuacct",
  "freezer",
];

/** One mounted v1 hierarchy and the parent cgroup directory in it. */
export interface V1Hierarchy {
  /** Controllers mounted together in this hierarchy (e.g. `cpu`, `cpuacct`). */
  controllers: V1Controller[];
  /** Mount point, e.g. `/sys/fs/cgroup/memory`. */
  mountPoint: string;
  /** Directory below which job cgroups are created. */
  parentDir: string;
}

/** Options of {@linkcode createV1Driver}. */
export interface V1DriverOptions {
  /**
   * `--cgroup-parent`: absolute (`/a/b`, from each hierarchy's root) or
   * relative (`a/b`, below this process's own cgroup). Default: this
   * process's own cgroup in each hierarchy.
   */
  parent?: string;
  /** Parsed mounts; read from `/proc/self/mountinfo` when absent. */
  mounts?: CgroupMount[];
  /** Parsed memberships; read from `/proc/self/cgroup` when absent. */
  memberships?: CgroupMembership[];
}

/** Whether the mounts hold any v1 hierarchy with a controller we use. */
export function hasV1Controllers(mounts: readonly CgroupMount[]): boolean {
  return mounts.some((m) =>
    m.version === 1 &&
    m.controllers.some((c) => (V1_CONTROLLERS as readonly string[]).includes(c))
  );
}

/**
 * Finds the v1 hierarchies and creates the parent cgroup in each (if it is
 * missing). Throws with a clear message if no usable hierarchy is mounted.
 */
export async function createV1Driver(
  options: V1DriverOptions = {},
): Promise<V1Driver> {
  const { mounts, memberships } = await selfLayout(options);
  const hierarchies: V1Hierarchy[] = [];
  for (const mount of mounts) {
    if (mount.version !== 1) continue;
    const controllers = mount.controllers.filter((c): c is V1Controller =>
      (V1_CONTROLLERS as readonly string[]).includes(c)
    );
    if (controllers.length === 0) continue;
    // A hierarchy mounted twice (or a controller seen again) is used once.
    if (
      hierarchies.some((h) =>
        h.controllers.some((c) => controllers.includes(c))
      )
    ) continue;
    const membership = memberships.find((m) =>
      m.controllers.some((c) => mount.controllers.includes(c))
    );
    if (!membership) {
      throw new Error(
        `Cannot use cgroup v1 hierarchy ${mount.mountPoint}: this process is not listed in it in /proc/self/cgroup; check the cgroup mounts`,
      );
    }
    const own = options.parent?.startsWith("/")
      ? "/"
      : pathBelowMount(mount, membership.path);
    if (own === undefined) {
      throw new Error(
        `Cannot use cgroup v1 hierarchy ${mount.mountPoint}: this process's cgroup ${membership.path} is not visible below the mount (root ${mount.root}); mount the hierarchy's root or pass an absolute --cgroup-parent`,
      );
    }
    const parentPath = resolveParent(own, options.parent);
    const parentDir = joinCgroupPath(mount.mountPoint, parentPath);
    hierarchies.push({ controllers, mountPoint: mount.mountPoint, parentDir });
  }
  if (hierarchies.length === 0) {
    throw new Error(
      "No cgroup v1 hierarchy with the cpu, cpuacct, memory, blkio, pids or freezer controller is mounted; mount them under /sys/fs/cgroup or use a cgroup v2 host",
    );
  }
  for (const h of hierarchies) await makeDir(h.parentDir);
  return new V1Driver(hierarchies);
}

/** Creates job cgroups in every mounted v1 hierarchy. */
export class V1Driver implements CgroupDriver {
  /** Always 1. */
  readonly version = 1 as const;
  /** Where job cgroups go, one directory per hierarchy. */
  readonly parent: string;
  /** The hierarchies in use. */
  readonly hierarchies: readonly V1Hierarchy[];
  /** Why job cgroups go where they go. */
  readonly placement: string;

  /** Use {@linkcode createV1Driver}; this constructor does no I/O. */
  constructor(hierarchies: readonly V1Hierarchy[], placement?: string) {
    this.hierarchies = hierarchies;
    this.placement = placement ??
      "cgroup v1: job cgroups go below the server's own cgroup in each hierarchy (v1 has no no-internal-processes rule); --cgroup-parent overrides";
    this.parent = "cgroup v1: " +
      hierarchies.map((h) => `${h.controllers.join(",")}=${h.parentDir}`)
        .join(" ");
  }

  /** The parent directory in each hierarchy. */
  get parentDirs(): string[] {
    return this.hierarchies.map((h) => h.parentDir);
  }

  /**
   * Creates `telejob-<name>` in every hierarchy and applies `limits`. On
   * failure every directory it made is removed again: each is deferred onto
   * an undo stack as it is made, and the stack is kept only on success.
   */
  async create(name: string, limits: Limits): Promise<V1JobCgroup> {
    const job = this.open(name);
    this.#checkControllers(limits);
    await using undo = new AsyncDisposableStack();
    // The hierarchies are independent, so their directories are made at once.
    const dirs = [...new Set(job.dirs.values())];
    const made = await Promise.allSettled(dirs.map((dir) => makeJobDir(dir)));
    dirs.forEach((dir, i) => {
      if (made[i].status === "fulfilled") {
        undo.defer(() => removeDir(dir).catch(() => {}));
      }
    });
    const failed = made.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    applyLimits(job, limits);
    undo.move();
    return job;
  }

  /** The job cgroup `telejob-<name>`, without touching the kernel. */
  open(name: string): V1JobCgroup {
    const dirName = jobDirName(name);
    const dirs = new Map<V1Controller, string>();
    for (const h of this.hierarchies) {
      const dir = `${h.parentDir}/${dirName}`;
      for (const c of h.controllers) dirs.set(c, dir);
    }
    return new V1JobCgroup(dirName, dirs);
  }

  /**
   * A job cgroup by the absolute directories recorded when it was created:
   * each belongs to the hierarchy whose mount point it is below. One that
   * is below no hierarchy in use (the host's layout changed) is left out.
   */
  openPaths(paths: readonly string[]): V1JobCgroup {
    const dirs = new Map<V1Controller, string>();
    let name: string | undefined;
    for (const dir of paths) {
      const h = this.hierarchies.find((h) =>
        dir.startsWith(h.mountPoint.replace(/\/$/, "") + "/")
      );
      if (h === undefined) continue;
      name ??= jobDirName(dir.slice(dir.lastIndexOf("/") + 1));
      for (const c of h.controllers) dirs.set(c, dir);
    }
    if (name === undefined) {
      throw new Error(
        `Cannot open job cgroup ${
          JSON.stringify(paths)
        }: no directory is below a cgroup v1 hierarchy in use`,
      );
    }
    return new V1JobCgroup(name, dirs);
  }

  /**
   * Start-up check of the server's own limits: one that needs a hierarchy
   * that is not mounted makes the server refuse to start.
   */
  checkServerLimits(limits: Limits): void {
    const missing = this.#missing(limits);
    if (missing === undefined) return;
    const { controller, flag } = missing;
    throw new Error(
      `The server's ${flag} needs the cgroup v1 ${controller} controller, which is not mounted (no ${controller} hierarchy in /proc/self/mountinfo); mount it (mount -t cgroup -o ${controller} cgroup /sys/fs/cgroup/${controller}) or drop ${flag}`,
    );
  }

  /** The first limit that needs a hierarchy which is not mounted. */
  #missing(
    limits: Limits,
  ): { controller: V1Controller; what: string; flag: string } | undefined {
    for (const need of limitNeeds(limits)) {
      const controller = V1_HIERARCHY_OF[need.controller];
      if (!this.hierarchies.some((h) => h.controllers.includes(controller))) {
        return { ...need, controller };
      }
    }
    return undefined;
  }

  /** Job cgroup names found in any hierarchy. */
  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const h of this.hierarchies) {
      for (const name of await listJobDirs(h.parentDir)) names.add(name);
    }
    return [...names].sort();
  }

  #checkControllers(limits: Limits): void {
    const missing = this.#missing(limits);
    if (missing === undefined) return;
    const { controller, what } = missing;
    throw new JobError(
      "failed_precondition",
      `This server cannot enforce ${what}: the cgroup v1 ${controller} controller is not mounted on its host; drop the limit or ask the operator to mount it`,
    );
  }
}

/**
 * Writes the job's limits, synchronously (see the `cgroup/fs.ts` module doc).
 */
function applyLimits(job: V1JobCgroup, limits: Limits): void {
  const cpu = job.dirs.get("cpu");
  const memory = job.dirs.get("memory");
  const pids = job.dirs.get("pids");
  const blkio = job.dirs.get("blkio");
  if (limits.cpu !== undefined && cpu) {
    const quota = String(cpuQuotaUs(limits.cpu));
    // A new cgroup's period is already the kernel's default, 100000 (not
    // inherited from the parent), and a CFS bandwidth write can be costly in
    // the kernel: read it (microseconds) and write it only when it differs.
    const period = `${cpu}/cpu.cfs_period_us`;
    if (readOptionalSync(period)?.trim() !== String(CFS_PERIOD_US)) {
      writeFileSync(period, String(CFS_PERIOD_US));
    }
    writeFileSync(`${cpu}/cpu.cfs_quota_us`, quota);
  }
  if (limits.memoryBytes !== undefined && memory) {
    const bytes = String(limits.memoryBytes);
    // The memory limit must be set before memsw, which may not be below it.
    writeFileSync(`${memory}/memory.limit_in_bytes`, bytes);
    if (existsSync(`${memory}/memory.memsw.limit_in_bytes`)) {
      writeFileSync(`${memory}/memory.memsw.limit_in_bytes`, bytes);
    } else {
      // Without swap accounting, keep the job's memory out of swap instead.
      writeFileSync(`${memory}/memory.swappiness`, "0");
    }
  }
  if (limits.pids !== undefined && pids) {
    writeFileSync(`${pids}/pids.max`, String(limits.pids));
  }
  if (blkio) {
    for (const io of limits.io ?? []) {
      const device = `${io.major}:${io.minor}`;
      const files: [number | undefined, string][] = [
        [io.rbps, "read_bps_device"],
        [io.wbps, "write_bps_device"],
        [io.riops, "read_iops_device"],
        [io.wiops, "write_iops_device"],
      ];
      for (const [value, file] of files) {
        if (value !== undefined) {
          writeFileSync(
            `${blkio}/blkio.throttle.${file}`,
            `${device} ${value}`,
          );
        }
      }
    }
  }
}

/** One job's cgroup: a directory in each v1 hierarchy. */
export class V1JobCgroup implements JobCgroup {
  /** `telejob-<name>`. */
  readonly name: string;
  /** The job's directory per controller (co-mounted ones share one). */
  readonly dirs: ReadonlyMap<V1Controller, string>;
  /** One `cgroup.procs` per hierarchy. */
  readonly procsFiles: readonly string[];
  /** The job's directory in each hierarchy, as the store records them. */
  readonly paths: readonly string[];

  /** Use {@linkcode V1Driver.open} or {@linkcode V1Driver.create}. */
  constructor(name: string, dirs: ReadonlyMap<V1Controller, string>) {
    this.name = name;
    this.dirs = dirs;
    this.paths = [...new Set(dirs.values())];
    this.procsFiles = this.paths.map((d) => `${d}/cgroup.procs`);
  }

  /**
   * Pids of the job's processes, from the first hierarchy's `cgroup.procs`
   * alone, read synchronously (microseconds; this runs at every job's end).
   *
   * Why the first list is complete: a v1 task belongs to one cgroup per
   * hierarchy, and a fork inherits all of its parent's. Every process of a
   * job descends from the startup shim, which writes its pid into
   * `procsFiles` in order, first file first, and forks nothing before the
   * last write. So a process in the job's cgroup of any hierarchy got there
   * after the shim had entered the first one, and is in it too; while the
   * shim is still entering, the first list already holds it. (After a
   * restart the same mounts give the same order.) Only a process
   * that moves itself out of the first hierarchy's cgroup but not out of
   * the others' would be missed — that takes root and deliberate escape,
   * which no cgroup setup can contain.
   *
   * A job running as root may also make cgroups inside its own and move
   * processes there. When any of the job's directories has a child cgroup
   * (its link count says so, one stat each), the pids of every cgroup below
   * every one of the job's directories count too.
   */
  pids(): number[] {
    return this.#pids();
  }

  #pids(): number[] {
    const first = this.procsFiles[0];
    if (first === undefined) return [];
    const trees = this.paths.map((dir) => subtreeSync(dir));
    if (trees.every((tree) => tree.length <= 1)) {
      return readPidsSync(first).sort((a, b) => a - b);
    }
    const pids = new Set<number>();
    for (const dir of trees.flat()) {
      for (const pid of readPidsSync(`${dir}/cgroup.procs`)) pids.add(pid);
    }
    return [...pids].sort((a, b) => a - b);
  }

  /** Sends `signal` to every process of the job. */
  signal(signal: Deno.Signal): void {
    for (const pid of this.#pids()) signalPid(pid, signal);
  }

  /**
   * Freeze, SIGKILL every process, thaw; repeat until no process is left in
   * the job's cgroups or any cgroup below them (v1's freezer freezes
   * descendants too); see {@linkcode killUntilEmpty}.
   */
  kill(options: { timeoutMs?: number } = {}): Promise<void> {
    const freezer = this.dirs.get("freezer");
    const state = `${freezer}/freezer.state`;
    return killUntilEmpty({
      name: this.name,
      populated: () => this.#pids().length > 0,
      pids: () => this.#pids(),
      freezer: freezer === undefined ? undefined : {
        freeze: () => writeFile(state, "FROZEN"),
        frozen: async () => (await readFile(state)).trim() === "FROZEN",
        thaw: () => writeFile(state, "THAWED"),
      },
    }, options);
  }

  /**
   * The `oom_kill` counter of `memory.oom_control` (0 without memory). Read
   * synchronously, like {@linkcode usage}.
   */
  oomKills(): number {
    const memory = this.dirs.get("memory");
    if (!memory) return 0;
    const text = readOptionalSync(`${memory}/memory.oom_control`);
    return text === undefined ? 0 : parseKeyed(text).get("oom_kill") ?? 0;
  }

  /**
   * cpuacct.usage, memory.max_usage_in_bytes and the blkio byte counters.
   * Read synchronously (see the `cgroup/fs.ts` module doc).
   */
  usage(): Usage {
    return this.#usage();
  }

  #usage(): Usage {
    const usage = emptyUsage();
    const cpuacct = this.dirs.get("cpuacct");
    if (cpuacct) {
      const ns = readOptionalSync(`${cpuacct}/cpuacct.usage`);
      if (ns !== undefined) usage.cpuUsec = Math.floor(Number(ns) / 1000);
    }
    const memory = this.dirs.get("memory");
    if (memory) {
      const peak = readOptionalSync(`${memory}/memory.max_usage_in_bytes`);
      if (peak !== undefined) usage.memoryPeakBytes = Number(peak);
    }
    const blkio = this.dirs.get("blkio");
    if (blkio) {
      const text = readOptionalSync(
        `${blkio}/blkio.throttle.io_service_bytes_recursive`,
      ) ??
        readOptionalSync(`${blkio}/blkio.throttle.io_service_bytes`);
      for (const line of (text ?? "").split("\n")) {
        const [device, op, value] = line.trim().split(/\s+/);
        if (!device?.includes(":") || value === undefined) continue;
        if (op === "Read") usage.ioReadBytes += Number(value);
        if (op === "Write") usage.ioWriteBytes += Number(value);
      }
    }
    return usage;
  }

  /**
   * Removes the directory in every hierarchy with any cgroup below it,
   * bottom-up, retrying while busy.
   */
  async remove(): Promise<void> {
    const results = await Promise.allSettled(
      this.paths.map((dir) => removeTree(dir)),
    );
    const errors = results.flatMap((r) =>
      r.status === "rejected" ? [r.reason] : []
    );
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(
        errors,
        `Failed to remove cgroup ${this.name} in ${errors.length} hierarchies: ${
          errors.map((e) => e instanceof Error ? e.message : String(e)).join(
            "; ",
          )
        }`,
      );
    }
  }
}
