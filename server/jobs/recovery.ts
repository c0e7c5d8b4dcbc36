/**
 * Recovery at start-up: jobs recorded as running belong to a server process
 * that died. Each one's cgroup (found by the directories recorded when it
 * started) is killed with every cgroup below it, its usage read and the
 * subtree removed, and the job is marked finished and `lostInRestart`. Any
 * other cgroup of this data dir below the parent is stale and removed too;
 * cgroups of other servers are left alone.
 * @module
 */
import type { CgroupDriver, JobCgroup } from "../../cgroup/mod.ts";
import { finalSize } from "./output_cap.ts";
import { existsSync, inParallel, settle } from "./running.ts";
import type { JobStore } from "./store.ts";

/** What {@linkcode recoverLost} works on. */
export interface RecoveryOptions {
  /** The job store, whose running records are the lost jobs. */
  store: JobStore;
  /** The cgroup driver. */
  cgroups: CgroupDriver;
  /** `telejob-<instance>-`: this data dir's job cgroups, and only those. */
  cgroupPrefix: string;
  /** The output directory (`<dataDir>/output`). */
  outputDir: string;
  /** The per-job output cap in bytes. */
  outputLimit: number;
}

/** Ends the jobs a dead server left running and sweeps stale cgroups. */
export async function recoverLost(options: RecoveryOptions): Promise<void> {
  const { store, cgroups: driver, cgroupPrefix, outputDir, outputLimit } =
    options;
  const lost = store.running();
  // Each lost job's cgroup where it was made, by the directories recorded
  // then: the server may now run elsewhere or place job cgroups elsewhere.
  // Jobs recorded before paths were, by name below the current parent.
  const cgroups = new Map<string, JobCgroup>();
  for (const job of lost) {
    const paths = store.cgroupPaths(job.id);
    let cgroup: JobCgroup | undefined;
    if (paths !== undefined && driver.openPaths !== undefined) {
      const openPaths = driver.openPaths.bind(driver);
      cgroup = await settle("cgroup lookup", job.id, () => openPaths(paths));
    }
    cgroups.set(
      job.id,
      cgroup ?? driver.open(cgroupPrefix + job.id),
    );
  }
  const stale = new Set(
    (await driver.list()).filter((name) => name.startsWith(cgroupPrefix)),
  );
  // Claim the lost jobs' cgroups first so the stale sweep below skips them.
  for (const cgroup of cgroups.values()) stale.delete(cgroup.name);
  await inParallel(lost, async (job) => {
    const cgroup = cgroups.get(job.id)!;
    let usage = job.usage;
    let oomKilled = false;
    if (cgroup.paths.some((dir) => existsSync(dir))) {
      // Kills the job's whole subtree: a job may have made cgroups inside
      // its own and moved processes there.
      await settle("kill after restart", job.id, () => cgroup.kill());
      const ooms = await settle("oom count", job.id, () => cgroup.oomKills());
      oomKilled = (ooms ?? 0) > 0;
      usage = await settle("usage", job.id, () => cgroup.usage()) ?? usage;
      await settle("cgroup removal", job.id, () => cgroup.remove());
    }
    const { bytes, limitReached } = await finalSize(
      `${outputDir}/${job.id}.out`,
      outputLimit,
    );
    store.finish(job.id, {
      endedAt: new Date(),
      oomKilled,
      stopped: false,
      lostInRestart: true,
      outputLimitReached: limitReached,
      usage,
      outputBytes: bytes,
    });
  });
  await inParallel([...stale], async (name) => {
    const cgroup = driver.open(name);
    await settle("stale kill", name, () => cgroup.kill());
    await settle("stale cgroup removal", name, () => cgroup.remove());
  });
}
