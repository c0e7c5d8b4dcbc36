/**
 * The job engine proper: starts jobs in their own cgroups through the
 * startup shim, stops whole process trees, records how every job ended and
 * serves its output. See {@linkcode JobEngine}.
 * @module
 */
import {
  type CgroupDriver,
  JOB_PREFIX,
  type Limits,
} from "../../cgroup/mod.ts";
import { effectiveLimits } from "./limits.ts";
import { locateShim } from "../../shim/mod.ts";
import { resolveCommand } from "./command.ts";
import { Identities } from "./identity.ts";
import { prepareDataDir, protectStore } from "./layout.ts";
import { JobError, jobNotFound } from "./errors.ts";
import { checkJobId } from "../../common/validate.ts";
import { OutputDir, readOutput } from "./output.ts";
import { OutputCap } from "./output_cap.ts";
import { recoverLost } from "./recovery.ts";
import { launch } from "./start.ts";
import { recordEnd } from "./end.ts";
import {
  DEFAULT_OUTPUT_LIMIT_BYTES,
  type EngineOptions,
  parseByteCount,
  parseGrace,
} from "./engine_options.ts";

import {
  copyInfo,
  inParallel,
  type RunningJob,
  settle,
  signalMain,
} from "./running.ts";
import { dataDirFull, isDiskFull } from "./failures.ts";
import { JobStore, type ListPage } from "./store.ts";
import { PendingWrites } from "./pending.ts";
import type {
  JobInfo,
  LogsOptions,
  StartRequest,
  StopOptions,
} from "./types.ts";

export {
  DEFAULT_GRACE_MS,
  DEFAULT_OUTPUT_LIMIT_BYTES,
  type EngineOptions,
} from "./engine_options.ts";

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
  #cap: OutputCap;

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
    this.#cap = new OutputCap({
      limit: outputLimit,
      path: (id) => this.#output.path(id),
      kill: (job) => this.#kill(job),
    });
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
    await recoverLost({
      store,
      cgroups: options.cgroups,
      cgroupPrefix: engine.#cgroupPrefix,
      outputDir: `${options.dataDir}/output`,
      outputLimit,
    });
    engine.#output = await OutputDir.open(`${options.dataDir}/output`, {
      onChange: (id) => engine.#onOutputChange(id),
    });
    rollback.move();
    return engine;
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
    return await launch({
      dataDir: this.#dataDir,
      store: this.#store,
      output: this.#output,
      cgroups: this.#cgroups,
      cgroupPrefix: this.#cgroupPrefix,
      shim: this.#shim,
      pending: this.#pending,
      running: this.#running,
      release: (owner) => this.#release(owner),
      end: (job, status, error) => this.#end(job, status, error),
    }, { user, resolved, identity, limits });
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
  #end(
    job: RunningJob,
    status: Deno.CommandStatus | undefined,
    error?: unknown,
  ): Promise<JobInfo> {
    return recordEnd({
      output: this.#output,
      outputLimit: this.#outputLimit,
      pending: this.#pending,
      running: this.#running,
      release: (owner: string) => this.#release(owner),
    }, { job, status, error });
  }

  #onOutputChange(id: string | undefined): void {
    if (id === undefined) {
      for (const job of this.#running.values()) this.#cap.schedule(job);
      return;
    }
    const job = this.#running.get(id);
    if (job !== undefined) this.#cap.schedule(job);
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
      info.usage = job.cgroup.usage();
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
