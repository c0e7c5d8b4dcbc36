/**
 * The contract between the job engine and the kernel's cgroup files.
 *
 * One small interface with a v1 and a v2 driver side by side (see
 * `cgroup/v1.ts` and `cgroup/v2.ts`), in the manner of runc and containerd.
 * @module
 */

/** Per-device disk throttle, as the kernel takes it (bytes or IOs per second). */
export interface IoLimit {
  /** Block device major number. */
  major: number;
  /** Block device minor number. */
  minor: number;
  /** Read bytes per second. */
  rbps?: number;
  /** Write bytes per second. */
  wbps?: number;
  /** Read operations per second. */
  riops?: number;
  /** Write operations per second. */
  wiops?: number;
}

/** Resource limits of one job. An absent field means "no limit". */
export interface Limits {
  /** CPU bandwidth in cores (0.2 = a fifth of one CPU). */
  cpu?: number;
  /** Memory limit in bytes (swap is disabled when memory is limited). */
  memoryBytes?: number;
  /** Maximum number of processes and threads. */
  pids?: number;
  /** Disk throttles, at most one entry per device. */
  io?: IoLimit[];
}

/** Resource usage of a job, read from its cgroup before it is removed. */
export interface Usage {
  /** CPU time in microseconds (user + system). */
  cpuUsec: number;
  /** Peak memory in bytes (0 when the kernel does not report it). */
  memoryPeakBytes: number;
  /** Bytes read from block devices. */
  ioReadBytes: number;
  /** Bytes written to block devices. */
  ioWriteBytes: number;
}

/**
 * The controllers job limits use, by their cgroup v2 names, each with the
 * v1 hierarchy that does its work (v1 calls `io` `blkio`). Both drivers'
 * controller lists derive from this one table.
 */
export const V1_HIERARCHY_OF = {
  cpu: "cpu",
  memory: "memory",
  io: "blkio",
  pids: "pids",
} as const;

/** A controller a job limit needs, by its cgroup v2 name. */
export type LimitController = keyof typeof V1_HIERARCHY_OF;

/** The CFS period a job's CPU quota is counted in (v1 and v2), in µs. */
export const CFS_PERIOD_US = 100000;

/**
 * The CFS quota for `cpu` cores per {@linkcode CFS_PERIOD_US}, at least the
 * kernel's minimum of 1 ms.
 */
export function cpuQuotaUs(cpu: number): number {
  return Math.max(1000, Math.round(cpu * CFS_PERIOD_US));
}

/** What one kind of limit needs from the kernel. */
export interface LimitNeed {
  /** The controller, by its cgroup v2 name (see {@linkcode V1_HIERARCHY_OF}). */
  controller: LimitController;
  /** The limit in words, e.g. `a CPU limit`. */
  what: string;
  /** The server flag that sets it, e.g. `--cpu-limit`. */
  flag: string;
}

/** The controllers `limits` need, in a fixed order. */
export function limitNeeds(limits: Limits): LimitNeed[] {
  const all: [boolean, LimitNeed][] = [
    [limits.cpu !== undefined, {
      controller: "cpu",
      what: "a CPU limit",
      flag: "--cpu-limit",
    }],
    [limits.memoryBytes !== undefined, {
      controller: "memory",
      what: "a memory limit",
      flag: "--memory-limit",
    }],
    [limits.pids !== undefined, {
      controller: "pids",
      what: "a pids limit",
      flag: "--pids-limit",
    }],
    [(limits.io?.length ?? 0) > 0, {
      controller: "io",
      what: "an I/O limit",
      flag: "--io-limit",
    }],
  ];
  return all.filter(([wanted]) => wanted).map(([, need]) => need);
}

/** Usage of a job that has not run yet: every counter 0 (a fresh object). */
export function emptyUsage(): Usage {
  return { cpuUsec: 0, memoryPeakBytes: 0, ioReadBytes: 0, ioWriteBytes: 0 };
}

/** One job's cgroup (on v1: one directory per hierarchy it uses). */
export interface JobCgroup {
  /**
   * Name of the job cgroup below the parent: `telejob-` and the name given
   * to `create` (the engine's are `telejob-<instance>-<id>`).
   */
  readonly name: string;
  /**
   * The `cgroup.procs` files the startup shim writes its own pid into before
   * it execs the user's command (one per v1 hierarchy, one on v2).
   */
  readonly procsFiles: readonly string[];
  /**
   * The job's absolute cgroup directories (one per v1 hierarchy, one on
   * v2), recorded in the store so that a restarted server finds the job
   * even after its placement changed.
   */
  readonly paths: readonly string[];
  /**
   * Pids of every process in the cgroup and the cgroups below it. This and
   * `signal`, `oomKills` and `usage` are synchronous: each is a few reads of
   * kernel files (see the `cgroup/fs.ts` module doc).
   */
  pids(): number[];
  /** Sends a signal to every process in the cgroup's subtree (e.g. SIGTERM). */
  signal(signal: Deno.Signal): void;
  /**
   * SIGKILLs every process in the cgroup and every cgroup below it (a job
   * running as root may make some) and resolves once the subtree is empty.
   * Must not miss a process that forks while it runs (cgroup.kill on v2,
   * freezer or a repeat-until-empty loop on v1). Throws once `timeoutMs`
   * (default 10 s) passes with processes left.
   */
  kill(options?: { timeoutMs?: number }): Promise<void>;
  /** How many processes the kernel's OOM killer has killed in this cgroup. */
  oomKills(): number;
  /** CPU, peak memory and I/O counters. */
  usage(): Usage;
  /**
   * Removes the cgroup directories with everything below them, bottom-up,
   * retrying while the kernel says busy.
   */
  remove(): Promise<void>;
}

/** A cgroup driver: creates job cgroups below one parent cgroup. */
export interface CgroupDriver {
  /** 1 for the legacy/hybrid layout, 2 for the unified hierarchy. */
  readonly version: 1 | 2;
  /** Human-readable description of where job cgroups are created. */
  readonly parent: string;
  /** Why job cgroups go there (logged at start-up). */
  readonly placement?: string;
  /**
   * The parent directories job cgroups are created in (one per v1
   * hierarchy, one on v2), for whoever made the parent to remove it.
   */
  readonly parentDirs: readonly string[];
  /** Creates a cgroup named `name` with `limits` applied. */
  create(name: string, limits: Limits): Promise<JobCgroup>;
  /** Opens an existing job cgroup (found after a restart) without changing it. */
  open(name: string): JobCgroup;
  /**
   * Opens a job cgroup by the absolute directories {@linkcode JobCgroup.paths}
   * gave when it was created, wherever its parent was.
   */
  openPaths?(paths: readonly string[]): JobCgroup;
  /** Names of job cgroups (prefix `telejob-`) currently below the parent. */
  list(): Promise<string[]>;
}
