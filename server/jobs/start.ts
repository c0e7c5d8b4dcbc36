/**
 * The start path: what a job is made of, made in order (record, output
 * file, cgroup, the shim's process), each step deferring its undoing on one
 * `AsyncDisposableStack`. A start that fails part-way removes only what it
 * made; ids are never reused.
 * @module
 */
import { statfsSync } from "node:fs";
import {
  type CgroupDriver,
  emptyUsage,
  type Limits,
  shimCommand,
} from "../../cgroup/mod.ts";
import type { ResolvedCommand } from "./command.ts";
import {
  dataDirFull,
  exhausted,
  isDiskFull,
  MIN_FREE_BYTES,
} from "./failures.ts";
import type { Identity } from "./identity.ts";
import type { OutputDir } from "./output.ts";
import type { PendingWrites } from "./pending.ts";
import { copyInfo, type RunningJob, settle } from "./running.ts";
import type { JobStore } from "./store.ts";
import type { JobInfo } from "./types.ts";

/** The engine's parts a start uses. */
export interface LaunchContext {
  /** The data dir, whose free space is checked first. */
  dataDir: string;
  /** The job store. */
  store: JobStore;
  /** The output directory. */
  output: OutputDir;
  /** The cgroup driver. */
  cgroups: CgroupDriver;
  /** `telejob-<instance>-`, the prefix of this data dir's job cgroups. */
  cgroupPrefix: string;
  /** Path of the startup shim. */
  shim: string;
  /** Writes the store refused, retried until taken. */
  pending: PendingWrites;
  /** The engine's running jobs, which the new job joins. */
  running: Map<string, RunningJob>;
  /** Gives back the owner's quota slot taken for this start. */
  release: (user: string) => void;
  /** Records a job's end once its main process exited. */
  end: (
    job: RunningJob,
    status: Deno.CommandStatus | undefined,
    error?: unknown,
  ) => Promise<JobInfo>;
}

/** A validated start: who, what, as whom, under which limits. */
export interface LaunchPlan {
  /** The owner (whose quota slot is already taken). */
  user: string;
  /** The resolved command. */
  resolved: ResolvedCommand;
  /** The identity the job runs as. */
  identity: Identity;
  /** The job's effective limits. */
  limits: Limits;
}

/** Refuses a start when the data dir's file system is (nearly) full. */
export function checkDiskSpace(dataDir: string): void {
  let free: number;
  try {
    const fs = statfsSync(dataDir);
    free = fs.ffree === 0 ? 0 : fs.bavail * fs.bsize;
  } catch {
    return; // Cannot tell: the writes below will say.
  }
  if (free < MIN_FREE_BYTES) throw dataDirFull();
}

/** Makes and spawns the job; on failure, unwinds what it made. */
export async function launch(
  ctx: LaunchContext,
  plan: LaunchPlan,
): Promise<JobInfo> {
  const { user, resolved, identity, limits } = plan;
  try {
    // Each step that makes something defers its undoing; a failed start
    // unwinds only what it made (newest first), a successful one moves
    // the undoing away. Ids are never reused: the record goes through
    // the pending writes, so a full disk cannot leave a phantom running job.
    await using rollback = new AsyncDisposableStack();
    rollback.defer(() => ctx.release(user));
    checkDiskSpace(ctx.dataDir);
    const startedAt = new Date();
    const id = ctx.store.insert({
      owner: user,
      command: resolved.command,
      args: resolved.args,
      cwd: resolved.cwd,
      startedAt,
      limits,
      account: identity.name,
      uid: identity.uid,
    });
    rollback.defer(() => ctx.pending.delete(id));
    const outputPath = ctx.output.path(id);
    // Created exclusively: a file that was there before is not ours to
    // remove, so the removal is deferred only once this made it.
    ctx.output.create(id);
    rollback.defer(() =>
      settle("output removal", id, () => Deno.remove(outputPath))
    );
    const cgroup = await ctx.cgroups.create(
      ctx.cgroupPrefix + id,
      limits,
    );
    rollback.defer(() => settle("cgroup removal", id, () => cgroup.remove()));
    ctx.store.setCgroupPaths(id, cgroup.paths);
    const shim = shimCommand(resolved.program, resolved.args, {
      shim: ctx.shim,
      procsFiles: cgroup.procsFiles,
      outputPath,
      cwd: resolved.cwd,
      env: resolved.env,
      runAs: identity,
    });
    // The shim starts with an empty environment: the job's reaches only
    // its final exec, after the cgroup and the identity are in force.
    const child = new Deno.Command(shim.program, {
      args: shim.args,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();

    const info: JobInfo = {
      id,
      owner: user,
      command: resolved.command,
      args: resolved.args,
      cwd: resolved.cwd,
      state: "running",
      startedAt,
      oomKilled: false,
      stopped: false,
      lostInRestart: false,
      outputLimitReached: false,
      limits,
      usage: emptyUsage(),
      outputBytes: 0,
      account: identity.name,
      uid: identity.uid,
    };
    let resolveEnded!: (info: JobInfo) => void;
    const job: RunningJob = {
      info,
      cgroup,
      child,
      ended: new Promise((resolve) => resolveEnded = resolve),
      phase: "running",
      capCheckedAt: 0,
    };
    ctx.running.set(id, job);
    child.status.then(
      (status) => ctx.end(job, status),
      (error) => ctx.end(job, undefined, error),
    ).then(resolveEnded, (error) => {
      // #end handles its own failures; this only guards stop() callers
      // against waiting forever on a bug.
      console.error(`Job ${info.id}: recording its end failed:`, error);
      resolveEnded(copyInfo(info));
    });
    rollback.move();
    return copyInfo(info);
  } catch (error) {
    if (isDiskFull(error)) throw dataDirFull();
    throw exhausted(error) ?? error;
  }
}
