/**
 * The job engine proper: starts jobs in their own cgroups through the
 * startup shim, stops whole process trees, records how every job ended and
 * serves its output. See {@linkcode JobEngine}.
 * @module
 */
import { statfsSync } from "node:fs";
import {
  type CgroupDriver,
  emptyUsage,
  JOB_PREFIX,
  type JobCgroup,
  type Limits,
  SHIM_FAILURE_EXIT_CODE,
  SHIM_FAILURE_PREFIX,
  shimCommand,
} from "../../cgroup/mod.ts";
import { effectiveLimits } from "./limits.ts";
import { locateShim } from "../../shim/mod.ts";
import { resolveCommand } from "./command.ts";
import { Identities, type IdRange, type RunAsRule } from "./identity.ts";
import { prepareDataDir, protectStore } from "./layout.ts";
import { JobError, jobNotFound } from "./errors.ts";
import { checkGraceMs, checkJobId } from "../../common/validate.ts";
import { OutputDir, readOutput } from "./output.ts";
import { JobStore, type ListPage } from "./store.ts";
import { PendingWrites } from "./pending.ts";
import type {
  JobInfo,
  LogsOptions,
  StartRequest,
  StopOptions,
} from "./types.ts";

/** How an engine is set up. */
export interface EngineOptions {
  /** Directory for the job store and the output files. */
  dataDir: string;
  /** The cgroup driver jobs run under. */
  cgroups: CgroupDriver;
  /** Server-wide limits: the defaults and the ceilings for per-job limits. */
  limits?: Limits;
  /** Per-job output cap in bytes (default 1 GiB). */
  outputLimitBytes?: number;
  /** Users who may see and stop every job. */
  admins?: string[];
  /** Maximum running jobs per user (default unlimited). */
  maxJobsPerUser?: number;
  /** Which owners may run jobs as which login accounts (`--run-as`). */
  runAs?: readonly RunAsRule[];
  /** Range of the owners' default identities (`--uid-range`). */
  uidRange?: IdRange;
  /** Path of the startup helper (`--shim`); found or built when absent. */
  shimPath?: string;
}

/** Default per-job output cap: 1 GiB. */
export const DEFAULT_OUTPUT_LIMIT_BYTES = 1024 * 1024 * 1024;
/** Default grace period of `stop` and `shutdown`: 10 s. */
export const DEFAULT_GRACE_MS = 10_000;

// How many jobs' cgroups list() and recovery read at once: enough to hide
// latency, few enough not to spend the fd budget the jobs need.
const CGROUP_CONCURRENCY = 32;

/** Runs `work` over `items`, at most CGROUP_CONCURRENCY at a time. */
async function inParallel<T>(
  items: readonly T[],
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: CGROUP_CONCURRENCY }, worker));
}

// A writing job's output size is checked against the cap at most this often.
// Checking at every inotify modify event kept a back-to-back stat loop
// running for as long as a job wrote, a core of the server's; what a job
// writes past the cap in between is truncated when it is killed.
const CAP_CHECK_INTERVAL_MS = 50;

/**
 * In-memory state of one running job. Kept deliberately small (the target is
 * 15,000 concurrent jobs at ≤ 16 KiB of server memory each): the record, the
 * cgroup handle and a few promises. No timer, pipe, fd or watcher per job;
 * the only per-job kernel resource is the pidfd inside Deno's child handle.
 */
interface RunningJob {
  info: JobInfo;
  cgroup: JobCgroup;
  /**
   * The main process. Signals go to it as well as to the cgroup: until the
   * shim has written itself into the cgroup (its first microseconds) it is
   * the only process of the job and not yet in the cgroup.
   */
  child: Deno.ChildProcess;
  /** Resolves with the final record once the job has ended and is persisted. */
  ended: Promise<JobInfo>;
  /**
   * Where the job is in its life: `running`; `terminating` once a stop sent
   * SIGTERM (so concurrent stops send it once); `ending` once the main
   * process exited and the end is being recorded (stops and cap checks then
   * leave it alone). It only moves forward. The kill and the cap check
   * below are not phases but shared operations that any phase may await.
   */
  phase: "running" | "terminating" | "ending";
  /** The one kill of the job's cgroup, shared by stop, cap and end. */
  killing?: Promise<void>;
  /** When the output cap was last checked (performance.now()). */
  capCheckedAt: number;
  /**
   * The next cap check, armed by a modify event within CAP_CHECK_INTERVAL_MS
   * of the last one and released when it fires: only writing jobs have one.
   */
  capTimer?: ReturnType<typeof setTimeout>;
  /** Killing the job and truncating its output once it reached the cap. */
  capCheck?: Promise<void>;
}

function copyInfo(info: JobInfo): JobInfo {
  const copy: JobInfo = {
    ...info,
    args: [...info.args],
    startedAt: new Date(info.startedAt),
    limits: {
      ...info.limits,
      ...(info.limits.io ? { io: info.limits.io.map((l) => ({ ...l })) } : {}),
    },
    usage: { ...info.usage },
  };
  if (info.endedAt) copy.endedAt = new Date(info.endedAt);
  return copy;
}

function parseGrace(graceMs: unknown): number {
  if (graceMs === undefined) return DEFAULT_GRACE_MS;
  return Math.floor(checkGraceMs(graceMs));
}

function parseByteCount(
  value: unknown,
  field: string,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 ||
    value > max
  ) {
    throw new JobError(
      "invalid_argument",
      `${field === "tail" ? "Tail" : "Offset"} ${
        String(value)
      } is out of range: give a whole number of bytes from 0 to ${max}${
        field === "offset" ? " (the output cap: no output lies beyond it)" : ""
      }`,
      field,
    );
  }
  return value;
}

/** The errno name of a Deno or Node error (`ENOSPC`), if it has one. */
function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

// What a kernel resource shortage is called in the client's message.
const EXHAUSTED_CODES: Record<string, string> = {
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EAGAIN: "resource temporarily unavailable",
  ENOMEM: "cannot allocate memory",
  ENOSPC: "no space left on device",
};

/**
 * A start that failed for want of a kernel resource (fds, processes, memory)
 * is the server being full, which the caller can act on by retrying later.
 */
function exhausted(error: unknown): JobError | undefined {
  const what = EXHAUSTED_CODES[errorCode(error) ?? ""];
  if (what === undefined) return undefined;
  return new JobError(
    "resource_exhausted",
    `The server has no room for another job right now (${what}): retry later or stop a job`,
  );
}

// SQLite's primary result code for "database or disk is full".
const SQLITE_FULL = 13;

/** Whether `error` says the file system is full (or the quota spent). */
export function isDiskFull(error: unknown): boolean {
  const code = errorCode(error);
  if (code === "ENOSPC" || code === "EDQUOT") return true;
  const sqlite = (error as { errcode?: unknown } | null)?.errcode;
  return code === "ERR_SQLITE_ERROR" && typeof sqlite === "number" &&
    (sqlite & 0xff) === SQLITE_FULL;
}

/** The error of a start refused because the data dir has no room. */
function dataDirFull(): JobError {
  return new JobError(
    "resource_exhausted",
    "The data dir's file system is full: no job was started; free space on the server (or stop a job that writes a lot) and retry",
  );
}

/**
 * Least free space on the data dir's file system for a new job: room for
 * its record and the first of its output. Below it Start is refused rather
 * than starting a job that cannot write.
 */
export const MIN_FREE_BYTES = 1024 * 1024;

/**
 * The startup shim's own failure line, when the job's exit code 125 came
 * from the shim (which then wrote only that line) and not from the command.
 */
function shimFailure(outputPath: string): string | undefined {
  let head: string;
  try {
    const file = Deno.openSync(outputPath);
    try {
      const buffer = new Uint8Array(4096);
      const n = file.readSync(buffer) ?? 0;
      head = new TextDecoder().decode(buffer.subarray(0, n));
    } finally {
      file.close();
    }
  } catch {
    return undefined;
  }
  if (!head.startsWith(SHIM_FAILURE_PREFIX) || !head.endsWith("\n")) {
    return undefined;
  }
  const line = head.slice(SHIM_FAILURE_PREFIX.length, -1);
  return line.includes("\n") ? undefined : line;
}

/** Signals the job's main process; a no-op once it has been reaped. */
function signalMain(job: RunningJob, signal: Deno.Signal): void {
  try {
    job.child.kill(signal);
  } catch {
    // Already exited: its end is being recorded.
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function settle<T>(
  what: string,
  id: string,
  work: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    console.error(`Job ${id}: ${what} failed:`, error);
    return undefined;
  }
}

/**
 * The job engine. Every method takes the calling user first; owner checks
 * live here, not in the API layer.
 *
 * - Ids are decimal sequential numbers from the store ("1", "2", ...). A
 *   malformed id is `invalid_argument` on field `id`.
 * - A job of another owner behaves exactly like a missing job: the same
 *   `not_found` error ({@linkcode jobNotFound}). Admins see and stop every job.
 * - A job runs in its own cgroup `telejob-<instance>-<id>` as the identity
 *   the policy gives it (`identity.ts`); the static startup shim
 *   (`shim/telejob_shim.c`) points stdout and stderr at one append-mode fd
 *   on the job's output file, moves itself into that cgroup, starts a
 *   session, drops to the identity (no capabilities, `no_new_privs`), closes
 *   every other fd, enters the working directory and execs the command with
 *   the job's clean environment, so the user's code never runs outside its
 *   limits or with the server's privileges. A shim failure (exit 125 and its
 *   own line in the output) is recorded as the job's `startError`.
 * - A job ends when its main process exits. Then, like systemd's
 *   `KillMode=control-group`, whatever is left in its cgroup is killed; the
 *   OOM-kill counter and usage are read before the cgroup is removed; the
 *   record is persisted.
 * - Signals (stop's SIGTERM, every kill) go to the job's cgroup and to its
 *   main process: for its first microseconds the shim is not in the cgroup
 *   yet, and a stop in that window must still reach it. (A server dying in
 *   that window is harmless: the cgroup exists before the spawn, so by the
 *   time a new server recovers, the shim has long entered it.)
 * - Output cap: when a job's output file reaches the cap, the job is killed
 *   like on any resource limit, the file is truncated to exactly the cap
 *   (the first cap bytes are kept) and `outputLimitReached` is set.
 */
export class JobEngine {
  #store: JobStore;
  #cgroups: CgroupDriver;
  /** `telejob-<instance>-`: this data dir's job cgroups, and only those. */
  #cgroupPrefix: string;
  #limits: Limits;
  #outputLimit: number;
  #admins: Set<string>;
  #maxJobsPerUser: number | undefined;
  #output!: OutputDir;
  #identities: Identities;
  #shim!: string;
  #running = new Map<string, RunningJob>();
  /** Ends and removals the store refused (disk full), retried until taken. */
  #pending!: PendingWrites;
  #dataDir: string;
  #perUser = new Map<string, number>();
  #starting = new Set<Promise<unknown>>();
  #accepting = true;
  #closed = false;
  #shutdown?: Promise<void>;

  private constructor(
    store: JobStore,
    options: EngineOptions,
    outputLimit: number,
  ) {
    this.#store = store;
    this.#pending = new PendingWrites(store);
    this.#dataDir = options.dataDir;
    this.#cgroups = options.cgroups;
    // The driver lists cgroups by its JOB_PREFIX; an engine's own names add
    // its data dir's instance id: `telejob-<instance>-<id>`.
    this.#cgroupPrefix = `${JOB_PREFIX}${store.instanceId()}-`;
    this.#limits = options.limits ?? {};
    this.#outputLimit = outputLimit;
    this.#admins = new Set(options.admins ?? []);
    this.#maxJobsPerUser = options.maxJobsPerUser;
    this.#identities = new Identities(store, {
      runAs: options.runAs,
      uidRange: options.uidRange,
      homeRoot: `${options.dataDir}/home`,
    });
  }

  /**
   * Opens the store (`<dataDir>/jobs.db`) and the output directory
   * (`<dataDir>/output`). Jobs recorded as running belong to a server
   * process that died: each one's cgroup (found by the directories recorded
   * when it started, wherever job cgroups went then) is killed with every
   * cgroup below it, its usage read and the subtree removed, and the job is
   * marked finished and `lostInRestart`. Any
   * other cgroup of this data dir (`telejob-<instance>-*`) below the parent
   * is stale and removed too, so no orphan survives a restart; cgroups of
   * other servers are left alone.
   */
  static async open(options: EngineOptions): Promise<JobEngine> {
    const outputLimit = options.outputLimitBytes ?? DEFAULT_OUTPUT_LIMIT_BYTES;
    if (!Number.isSafeInteger(outputLimit) || outputLimit <= 0) {
      throw new RangeError(
        `Output limit ${outputLimit} is not valid: give a positive whole number of bytes`,
      );
    }
    const max = options.maxJobsPerUser;
    if (max !== undefined && (!Number.isSafeInteger(max) || max <= 0)) {
      throw new RangeError(
        `Max jobs per user ${max} is not valid: give a positive whole number`,
      );
    }
    await prepareDataDir(options.dataDir);
    const shim = await locateShim({
      path: options.shimPath,
      dataDir: options.dataDir,
    });
    const store = JobStore.open(`${options.dataDir}/jobs.db`);
    // A failed open closes the store (and its lock) again; a successful
    // one hands it to the engine.
    await using rollback = new AsyncDisposableStack();
    rollback.defer(() => store.close());
    await protectStore(`${options.dataDir}/jobs.db`);
    const engine = new JobEngine(store, options, outputLimit);
    engine.#shim = shim;
    await engine.#recover(`${options.dataDir}/output`);
    engine.#output = await OutputDir.open(`${options.dataDir}/output`, {
      onChange: (id) => engine.#onOutputChange(id),
    });
    rollback.move();
    return engine;
  }

  async #recover(outputDir: string): Promise<void> {
    const lost = this.#store.running();
    // Each lost job's cgroup where it was made, by the directories recorded
    // then: the server may now run elsewhere or place job cgroups elsewhere.
    // Jobs recorded before paths were, by name below the current parent.
    const cgroups = new Map<string, JobCgroup>();
    for (const job of lost) {
      const paths = this.#store.cgroupPaths(job.id);
      let cgroup: JobCgroup | undefined;
      if (paths !== undefined && this.#cgroups.openPaths !== undefined) {
        const openPaths = this.#cgroups.openPaths.bind(this.#cgroups);
        cgroup = await settle(
          "cgroup lookup",
          job.id,
          () => Promise.resolve(openPaths(paths)),
        );
      }
      cgroups.set(
        job.id,
        cgroup ?? this.#cgroups.open(this.#cgroupPrefix + job.id),
      );
    }
    const stale = new Set(
      (await this.#cgroups.list()).filter((name) =>
        name.startsWith(this.#cgroupPrefix)
      ),
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
      const { bytes, limitReached } = await this.#finalSize(
        `${outputDir}/${job.id}.out`,
      );
      this.#store.finish(job.id, {
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
      const cgroup = this.#cgroups.open(name);
      await settle("stale kill", name, () => cgroup.kill());
      await settle("stale cgroup removal", name, () => cgroup.remove());
    });
  }

  /** Size of a finished job's output, truncated to the cap if it got past it. */
  async #finalSize(
    path: string,
  ): Promise<{ bytes: number; limitReached: boolean }> {
    let size = 0;
    try {
      // Synchronous: one stat (see the `cgroup/fs.ts` module doc).
      size = Deno.statSync(path).size;
    } catch {
      return { bytes: 0, limitReached: false };
    }
    if (size < this.#outputLimit) return { bytes: size, limitReached: false };
    if (size > this.#outputLimit) {
      await settle(
        "output truncation",
        path,
        () => Deno.truncate(path, this.#outputLimit),
      );
    }
    return { bytes: this.#outputLimit, limitReached: true };
  }

  #isAdmin(user: string): boolean {
    return this.#admins.has(user);
  }

  #visible(user: string, info: JobInfo): boolean {
    return info.owner === user || this.#isAdmin(user);
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new JobError(
        "unavailable",
        "The job engine has shut down: retry when the server is back",
      );
    }
  }

  /** The job's record as `user` may see it; throws not_found otherwise. */
  #lookup(user: string, rawId: string): JobInfo {
    const id = checkJobId(rawId);
    this.#checkOpen();
    const info = this.#running.get(id)?.info ?? this.#recorded(id);
    if (info === undefined || !this.#visible(user, info)) {
      throw jobNotFound(id);
    }
    return info;
  }

  /**
   * A job's record as it truly is: an end or removal the store has not taken
   * yet overrides the store's row.
   */
  #recorded(id: string): JobInfo | undefined {
    const pending = this.#pending.get(id);
    if (pending !== undefined) return pending ?? undefined;
    return this.#store.get(id);
  }

  /** Refuses a start when the data dir's file system is (nearly) full. */
  #checkDiskSpace(): void {
    let free: number;
    try {
      const fs = statfsSync(this.#dataDir);
      free = fs.ffree === 0 ? 0 : fs.bavail * fs.bsize;
    } catch {
      return; // Cannot tell: the writes below will say.
    }
    if (free < MIN_FREE_BYTES) throw dataDirFull();
  }

  /**
   * Starts a job owned by `user` and returns its record. The request is
   * validated completely (command resolved on the job's PATH, args, env,
   * cwd, limits against the server's ceilings, the user's quota) before
   * anything is created: a refused request leaves no trace. Errors:
   * `invalid_argument` (with the field), `resource_exhausted` (the user
   * already runs `maxJobsPerUser` jobs), `unavailable` (shutting down).
   */
  start(user: string, request: StartRequest): Promise<JobInfo> {
    const work = this.#start(user, request);
    this.#starting.add(work);
    const done = () => this.#starting.delete(work);
    work.then(done, done);
    return work;
  }

  #checkAccepting(): void {
    if (!this.#accepting) {
      throw new JobError(
        "unavailable",
        "The server is shutting down and accepts no new jobs: retry when it is back",
      );
    }
  }

  async #start(user: string, request: StartRequest): Promise<JobInfo> {
    this.#checkAccepting();
    let identity;
    try {
      identity = this.#identities.resolve(user, request.user);
    } catch (error) {
      // An owner's first start records its identity and makes its home.
      if (isDiskFull(error)) throw dataDirFull();
      throw error;
    }
    const resolved = await resolveCommand(request, {
      home: identity.home,
      user: identity.name,
      defaultCwd: identity.cwd,
      runAs: identity,
    });
    const limits = effectiveLimits(request.limits ?? {}, this.#limits);
    this.#checkAccepting();

    const count = this.#perUser.get(user) ?? 0;
    if (this.#maxJobsPerUser !== undefined && count >= this.#maxJobsPerUser) {
      throw new JobError(
        "resource_exhausted",
        `You already run ${count} jobs, the most allowed per user: stop one or wait for one to finish`,
      );
    }
    this.#perUser.set(user, count + 1);
    try {
      // Each step that makes something defers its undoing; a failed start
      // unwinds only what it made (newest first), a successful one moves
      // the undoing away. Ids are never reused: the record goes through
      // the pending writes, so a full disk cannot leave a phantom running job.
      await using rollback = new AsyncDisposableStack();
      rollback.defer(() => this.#release(user));
      this.#checkDiskSpace();
      const startedAt = new Date();
      const id = this.#store.insert({
        owner: user,
        command: resolved.command,
        args: resolved.args,
        cwd: resolved.cwd,
        startedAt,
        limits,
        account: identity.name,
        uid: identity.uid,
      });
      rollback.defer(() => this.#pending.delete(id));
      const outputPath = this.#output.path(id);
      // Created exclusively: a file that was there before is not ours to
      // remove, so the removal is deferred only once this made it.
      this.#output.create(id);
      rollback.defer(() =>
        settle("output removal", id, () => Deno.remove(outputPath))
      );
      const cgroup = await this.#cgroups.create(
        this.#cgroupPrefix + id,
        limits,
      );
      rollback.defer(() => settle("cgroup removal", id, () => cgroup.remove()));
      this.#store.setCgroupPaths(id, cgroup.paths);
      const shim = shimCommand(resolved.program, resolved.args, {
        shim: this.#shim,
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
      this.#running.set(id, job);
      child.status.then(
        (status) => this.#end(job, status),
        (error) => this.#end(job, undefined, error),
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

  #release(user: string): void {
    const count = (this.#perUser.get(user) ?? 1) - 1;
    if (count <= 0) this.#perUser.delete(user);
    else this.#perUser.set(user, count);
  }

  #kill(job: RunningJob): Promise<void> {
    if (job.killing === undefined) {
      signalMain(job, "SIGKILL");
      job.killing = job.cgroup.kill().catch((error) => {
        console.error(`Job ${job.info.id}: kill failed:`, error);
      });
    }
    return job.killing;
  }

  /** The main process exited: clean up the cgroup and record the end. */
  async #end(
    job: RunningJob,
    status: Deno.CommandStatus | undefined,
    error?: unknown,
  ): Promise<JobInfo> {
    const { info, cgroup } = job;
    const id = info.id;
    // The job ended when its main process did, not when the clean-up after
    // it (killing leftovers, reading counters, removing the cgroup) is done.
    const endedAt = new Date();
    job.phase = "ending";
    clearTimeout(job.capTimer);
    job.capTimer = undefined;
    if (error !== undefined) {
      console.error(`Job ${id}: waiting for its process failed:`, error);
    }
    await job.capCheck;
    // Like systemd's KillMode=control-group: the job is its main process;
    // whatever it left behind goes with it.
    // A kill begun by stop or the cap may predate the main process's exit;
    // once it is done, one more makes sure nothing is left. The main process
    // has been reaped, so only the cgroup is signalled (signalling the
    // child now would only build and drop an error).
    await job.killing;
    job.killing = cgroup.kill().catch((killError) => {
      console.error(`Job ${id}: kill failed:`, killError);
    });
    await job.killing;
    // The drivers read these counters synchronously (see the `cgroup/fs.ts`
    // module doc), so the end of a short job is a few event-loop turns.
    const [ooms, usage] = await Promise.all([
      settle("oom count", id, () => cgroup.oomKills()),
      settle("usage", id, () => cgroup.usage()),
    ]);
    const [, { bytes, limitReached }] = await Promise.all([
      settle("cgroup removal", id, () => cgroup.remove()),
      this.#finalSize(this.#output.path(id)),
    ]);

    info.state = "finished";
    info.endedAt = endedAt;
    const startError = status?.code === SHIM_FAILURE_EXIT_CODE && !status.signal
      ? shimFailure(this.#output.path(id))
      : undefined;
    if (status?.signal) info.signal = status.signal;
    else if (startError !== undefined) info.startError = startError;
    else if (status) info.exitCode = status.code;
    info.oomKilled = (ooms ?? 0) > 0;
    info.outputLimitReached ||= limitReached;
    if (usage) info.usage = usage;
    info.outputBytes = bytes;
    // Kept and retried while the store refuses it (a full disk); lookups
    // answer from the kept record meanwhile.
    this.#pending.finish(copyInfo(info));
    this.#running.delete(id);
    this.#release(info.owner);
    this.#output.wake(id);
    return copyInfo(info);
  }

  #onOutputChange(id: string | undefined): void {
    if (id === undefined) {
      for (const job of this.#running.values()) this.#scheduleCapCheck(job);
      return;
    }
    const job = this.#running.get(id);
    if (job !== undefined) this.#scheduleCapCheck(job);
  }

  /**
   * Rate-limits the cap check to one stat per CAP_CHECK_INTERVAL_MS per job:
   * the first modify event after a quiet interval checks at once, later ones
   * arm one timer, and every event is followed by a check that starts after
   * it, so the last write before the job goes quiet is always checked.
   */
  #scheduleCapCheck(job: RunningJob): void {
    if (
      job.phase === "ending" || job.info.outputLimitReached ||
      job.capTimer !== undefined
    ) return;
    const wait = job.capCheckedAt + CAP_CHECK_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.#capCheck(job);
      return;
    }
    job.capTimer = setTimeout(() => {
      job.capTimer = undefined;
      this.#capCheck(job);
    }, wait);
  }

  #capCheck(job: RunningJob): void {
    if (job.phase === "ending" || job.info.outputLimitReached) return;
    job.capCheckedAt = performance.now();
    const path = this.#output.path(job.info.id);
    let size: number;
    try {
      // Synchronous: one stat (see the `cgroup/fs.ts` module doc).
      size = Deno.statSync(path).size;
    } catch {
      return;
    }
    if (size < this.#outputLimit) return;
    job.info.outputLimitReached = true;
    job.capCheck = (async () => {
      await this.#kill(job);
      // The job's writers are all dead: nothing appends after this.
      await settle(
        "output truncation",
        job.info.id,
        () => Deno.truncate(path, this.#outputLimit),
      );
    })();
  }

  /**
   * Stops a job: SIGTERM to every process in its cgroup, up to `graceMs`
   * (default 10 s) for the main process to exit, then SIGKILL to everything
   * left in the cgroup. Grace 0 kills at once. Resolves with the final
   * record once the job has ended. Stopping a finished job returns its
   * record. Concurrent stops share the work: SIGTERM goes out once, all wait
   * for the same end, and the shortest grace decides when the kill comes.
   */
  async stop(
    user: string,
    id: string,
    options: StopOptions = {},
  ): Promise<JobInfo> {
    const graceMs = parseGrace(options.graceMs);
    const info = this.#lookup(user, id);
    const job = this.#running.get(info.id);
    if (job === undefined) return copyInfo(info);
    return await this.#stop(job, graceMs, user);
  }

  async #stop(
    job: RunningJob,
    graceMs: number,
    user: string | undefined,
  ): Promise<JobInfo> {
    if (job.phase !== "ending" && !job.info.stopped) {
      job.info.stopped = true;
      if (user !== undefined) job.info.stoppedBy = user;
    }
    if (graceMs > 0 && job.phase !== "ending") {
      if (job.phase === "running") {
        job.phase = "terminating";
        signalMain(job, "SIGTERM");
        await settle(
          "SIGTERM",
          job.info.id,
          () => job.cgroup.signal("SIGTERM"),
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        job.ended,
        new Promise((resolve) => timer = setTimeout(resolve, graceMs)),
      ]);
      clearTimeout(timer);
    }
    if (job.phase !== "ending") await this.#kill(job);
    return copyInfo(await job.ended);
  }

  /**
   * One job's record. For a running job, usage and output size are read
   * live from its cgroup and output file.
   */
  async status(user: string, id: string): Promise<JobInfo> {
    const info = this.#lookup(user, id);
    const job = this.#running.get(info.id);
    return job === undefined ? copyInfo(info) : await this.#live(job);
  }

  async #live(job: RunningJob): Promise<JobInfo> {
    const info = copyInfo(job.info);
    try {
      info.usage = await job.cgroup.usage();
    } catch {
      // The job ended meanwhile; its final usage lands with the record.
    }
    try {
      info.outputBytes = Math.min(
        (await Deno.stat(this.#output.path(info.id))).size,
        this.#outputLimit,
      );
    } catch {
      // As above.
    }
    return info;
  }

  /**
   * The jobs the user may see (all jobs for an admin), oldest first: with
   * `page`, only those after `page.after` and at most `page.limit` of them.
   * Running jobs show live usage, read a few at a time: with thousands of
   * running jobs, reading every cgroup at once would spend the server's fd
   * budget that the jobs themselves need.
   */
  async list(user: string, page: ListPage = {}): Promise<JobInfo[]> {
    this.#checkOpen();
    if (page.after !== undefined) checkJobId(page.after);
    // Rows whose deletion waits are dropped below: ask for as many more.
    const records = this.#store.list(this.#isAdmin(user) ? undefined : user, {
      after: page.after,
      limit: page.limit === undefined
        ? undefined
        : page.limit + this.#pending.size,
    });
    await inParallel(
      records.map((record, i) => ({ record, i })),
      async ({ record, i }) => {
        const job = this.#running.get(record.id);
        if (job !== undefined) records[i] = await this.#live(job);
        else records[i] = this.#pending.get(record.id) ?? record;
      },
    );
    // A failed start whose record the store would not delete yet.
    return records.filter((record) => this.#pending.get(record.id) !== null)
      .slice(0, page.limit);
  }

  /**
   * The job's output as binary chunks of at most `READ_CHUNK_BYTES` (256
   * KiB, in `output.ts`), read with the reader's own fd. `offset` starts at
   * a byte offset, `tail` at that many bytes before the current end.
   * Without `follow` the stream ends at the end the output had when it
   * began; with `follow` it ends after the job has ended and every byte was
   * delivered. `signal` ends it early. Errors (unknown id, bad offset) are
   * thrown by the first `next()`.
   */
  logs(
    user: string,
    id: string,
    options: LogsOptions = {},
  ): AsyncIterable<Uint8Array> {
    return this.#logs(user, id, options);
  }

  async *#logs(
    user: string,
    rawId: string,
    options: LogsOptions,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    // An offset past the cap could only wait for bytes that never come (and
    // past the file system's largest file, seek fails with EINVAL).
    const offset = parseByteCount(options.offset, "offset", this.#outputLimit);
    const tail = parseByteCount(options.tail, "tail", Number.MAX_SAFE_INTEGER);
    const { id } = this.#lookup(user, rawId);
    yield* readOutput({
      path: this.#output.path(id),
      running: () => this.#running.has(id),
      changed: () => this.#output.changed(id),
      limit: this.#outputLimit,
    }, {
      offset,
      tail,
      follow: options.follow,
      signal: options.signal,
      reuseBuffer: options.reuseBuffer === true,
    });
  }

  /**
   * Stops accepting new jobs (`unavailable`), stops every running job with
   * the given grace (default 10 s), waits for them to end and their cgroups
   * to be removed, then closes the output watcher and the store. Jobs ended
   * this way are marked stopped without a `stoppedBy`. Idempotent.
   */
  shutdown(options: StopOptions = {}): Promise<void> {
    let graceMs: number;
    try {
      graceMs = parseGrace(options.graceMs);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#shutdown ??= this.#doShutdown(graceMs);
    return this.#shutdown;
  }

  async #doShutdown(graceMs: number): Promise<void> {
    this.#accepting = false;
    await Promise.allSettled([...this.#starting]);
    await Promise.all(
      [...this.#running.values()].map((job) =>
        this.#stop(job, graceMs, undefined)
      ),
    );
    this.#closed = true;
    for (const id of this.#pending.close()) {
      console.error(
        `Job ${id}: the store still refuses its record; the next server start shows the job as lost`,
      );
    }
    await this.#output.close();
    this.#store.close();
  }
}
