/**
 * Output-cap policing: when a running job's output file reaches the cap,
 * the job is killed like on any resource limit, the file is truncated to
 * exactly the cap (the first cap bytes are kept) and `outputLimitReached`
 * is set. The output watcher's modify events drive the checks.
 * @module
 */
import { type RunningJob, settle } from "./running.ts";

/**
 * A writing job's output size is checked against the cap at most this often.
 * Checking at every inotify modify event kept a back-to-back stat loop
 * running for as long as a job wrote, a core of the server's; what a job
 * writes past the cap in between is truncated when it is killed.
 */
export const CAP_CHECK_INTERVAL_MS = 50;

/** What {@linkcode OutputCap} needs from the engine. */
export interface OutputCapOptions {
  /** The per-job output cap in bytes. */
  limit: number;
  /** Path of a job's output file. */
  path: (id: string) => string;
  /** Kills a job's whole cgroup (the engine's one shared kill). */
  kill: (job: RunningJob) => Promise<void>;
}

/** Checks running jobs' output sizes against the cap, rate-limited. */
export class OutputCap {
  #limit: number;
  #path: (id: string) => string;
  #kill: (job: RunningJob) => Promise<void>;

  /** Creates the policing for one engine. */
  constructor(options: OutputCapOptions) {
    this.#limit = options.limit;
    this.#path = options.path;
    this.#kill = options.kill;
  }

  /**
   * Rate-limits the cap check to one stat per CAP_CHECK_INTERVAL_MS per job:
   * the first modify event after a quiet interval checks at once, later ones
   * arm one timer, and every event is followed by a check that starts after
   * it, so the last write before the job goes quiet is always checked.
   */
  schedule(job: RunningJob): void {
    if (
      job.phase === "ending" || job.info.outputLimitReached ||
      job.capTimer !== undefined
    ) return;
    const wait = job.capCheckedAt + CAP_CHECK_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.#check(job);
      return;
    }
    job.capTimer = setTimeout(() => {
      job.capTimer = undefined;
      this.#check(job);
    }, wait);
  }

  #check(job: RunningJob): void {
    if (job.phase === "ending" || job.info.outputLimitReached) return;
    job.capCheckedAt = performance.now();
    const path = this.#path(job.info.id);
    let size: number;
    try {
      // Synchronous: one stat (see the `cgroup/fs.ts` module doc).
      size = Deno.statSync(path).size;
    } catch {
      return;
    }
    if (size < this.#limit) return;
    job.info.outputLimitReached = true;
    job.capCheck = (async () => {
      await this.#kill(job);
      // The job's writers are all dead: nothing appends after this.
      await settle(
        "output truncation",
        job.info.id,
        () => Deno.truncate(path, this.#limit),
      );
    })();
  }
}

/** Size of a finished job's output, truncated to the cap if it got past it. */
export async function finalSize(
  path: string,
  limit: number,
): Promise<{ bytes: number; limitReached: boolean }> {
  let size = 0;
  try {
    // Synchronous: one stat (see the `cgroup/fs.ts` module doc).
    size = Deno.statSync(path).size;
  } catch {
    return { bytes: 0, limitReached: false };
  }
  if (size < limit) return { bytes: size, limitReached: false };
  if (size > limit) {
    await settle(
      "output truncation",
      path,
      () => Deno.truncate(path, limit),
    );
  }
  return { bytes: limit, limitReached: true };
}
