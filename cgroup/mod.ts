/**
 * The kernel layer of Telejob: cgroup drivers (v1 and v2), the startup shim
 * and resource-limit parsing.
 *
 * ```ts ignore
 * const driver = await detectDriver();
 * const cgroup = await driver.create("42", { cpu: 0.2 });
 * const { program, args } = shimCommand("/usr/bin/sleep", ["10"], {
 *   shim: "/usr/local/bin/telejob-shim",
 *   procsFiles: cgroup.procsFiles,
 *   outputPath: "/var/lib/telejob/42.out",
 *   cwd: "/",
 *   env: { PATH: "/usr/bin:/bin" },
 *   runAs: { uid: 2000000000, gid: 2000000000, groups: [] },
 * });
 * ```
 * @module
 */
import type { CgroupDriver, Limits } from "./types.ts";
import { readSelf } from "./mounts.ts";
import { createV1Driver, hasV1Controllers } from "./v1.ts";
import { createV2Driver, findV2Mount } from "./v2.ts";

export type {
  CgroupDriver,
  IoLimit,
  JobCgroup,
  Limits,
  Usage,
} from "./types.ts";
export { emptyUsage } from "./types.ts";
export {
  cpuProblem,
  deviceProblem,
  formatBytes,
  formatCpu,
  hostCpus,
  hostMemoryBytes,
  IO_KEYS,
  type LimitFlags,
  MAX_IO_RATE,
  memoryProblem,
  parseLimitFlags,
  pidsProblem,
  splitRdev,
} from "./limits.ts";
export {
  type RunAs,
  SHIM_FAILURE_EXIT_CODE,
  SHIM_FAILURE_PREFIX,
  shimCommand,
  type ShimOptions,
} from "./shim.ts";
export { CgroupError, JOB_PREFIX, SERVER_LEAF } from "./fs.ts";
export { createV1Driver, V1Driver } from "./v1.ts";
export {
  createV2Driver,
  DEFAULT_V2_PARENT,
  type Placement,
  V2Driver,
} from "./v2.ts";

/** Options of {@linkcode detectDriver}. */
export interface DetectOptions {
  /**
   * `--cgroup-parent`: where job cgroups go. Absolute (`/a/b`) from the
   * hierarchy's root, or relative (`a/b`) below the cgroup this process runs
   * in. Default on v1: the cgroup this process runs in, per hierarchy. Default
   * on v2: this process's cgroup when it is delegated to it, otherwise
   * `/telejob` at the hierarchy's root (see `createV2Driver`).
   */
  parent?: string;
  /**
   * The server's limits: start-up fails, naming the controller, the file
   * and the fix, when one needs a controller the job cgroups cannot get.
   */
  limits?: Limits;
}

/**
 * Detects the host's cgroup layout and returns the matching driver: v1 when
 * legacy hierarchies hold the controllers (legacy and hybrid hosts, where
 * `/sys/fs/cgroup/unified` is a cgroup2 mount without controllers), v2 when
 * the unified hierarchy does. Throws an actionable error when neither is
 * usable.
 */
export async function detectDriver(
  options: DetectOptions = {},
): Promise<CgroupDriver> {
  let self;
  try {
    self = await readSelf();
  } catch (error) {
    throw new Error(
      `Cannot read /proc/self/mountinfo or /proc/self/cgroup (${
        error instanceof Error ? error.message : error
      }); mount /proc and run on Linux with cgroups`,
      { cause: error },
    );
  }
  const { mounts, memberships } = self;
  if (hasV1Controllers(mounts)) {
    const driver = await createV1Driver({
      parent: options.parent,
      mounts,
      memberships,
    });
    driver.checkServerLimits(options.limits ?? {});
    return driver;
  }
  if (await findV2Mount(mounts)) {
    return await createV2Driver({
      parent: options.parent,
      limits: options.limits,
      mounts,
      memberships,
    });
  }
  throw new Error(
    "No usable cgroup hierarchy: neither cgroup v2 with controllers nor cgroup v1 cpu/memory/pids/blkio hierarchies are mounted; mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup) and run the server as root",
  );
}
