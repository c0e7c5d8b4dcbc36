/**
 * Store writes that failed (a full disk, an I/O error) and are kept until
 * the store takes them: a job's end, or the removal of a record whose start
 * failed. While a write waits, the engine answers from here, so `status`
 * and `list` never show the store's stale `running`.
 * @module
 */
import type { JobInfo } from "./types.ts";
import type { JobEnd } from "./store.ts";

/** The store calls a pending write retries. */
export interface PendingStore {
  finish(id: string, end: JobEnd): void;
  delete(id: string): void;
}

/** Options of {@linkcode PendingWrites}. */
export interface PendingOptions {
  /** First retry delay in ms (default 1 s); it doubles up to `maxDelayMs`. */
  delayMs?: number;
  /** Longest retry delay in ms (default 30 s). */
  maxDelayMs?: number;
  /** Where failures are reported (default console.error). */
  log?: (message: string, error?: unknown) => void;
}

/**
 * Failed store writes, retried on one timer for all of them until they
 * succeed. `finish` and `delete` try the store at once; only a failure is
 * kept.
 */
export class PendingWrites {
  #store: PendingStore;
  /** A job's end to record, or null: a record to delete. */
  #writes = new Map<string, JobInfo | null>();
  #timer?: ReturnType<typeof setTimeout>;
  #delay: number;
  #firstDelay: number;
  #maxDelay: number;
  #log: (message: string, error?: unknown) => void;

  /** Creates an empty set of pending writes to `store`. */
  constructor(store: PendingStore, options: PendingOptions = {}) {
    this.#store = store;
    this.#firstDelay = this.#delay = options.delayMs ?? 1000;
    this.#maxDelay = options.maxDelayMs ?? 30_000;
    this.#log = options.log ??
      ((message, error) => console.error(message, error ?? ""));
  }

  /** Records job `info.id`'s end now, or keeps it and retries. */
  finish(info: JobInfo): void {
    this.#write(info.id, info);
  }

  /** Deletes a record now, or keeps the deletion and retries. */
  delete(id: string): void {
    this.#write(id, null);
  }

  /**
   * A waiting write for job `id`: its end (the true record), null when the
   * record is to be deleted (the job does not exist), or undefined.
   */
  get(id: string): JobInfo | null | undefined {
    return this.#writes.get(id);
  }

  /** How many writes wait. */
  get size(): number {
    return this.#writes.size;
  }

  #write(id: string, info: JobInfo | null): void {
    if (this.#try(id, info)) return;
    this.#writes.set(id, info);
    this.#arm();
  }

  #try(id: string, info: JobInfo | null): boolean {
    try {
      if (info === null) this.#store.delete(id);
      else this.#store.finish(id, info);
      return true;
    } catch (error) {
      if (!this.#writes.has(id)) {
        this.#log(
          `Job ${id}: ${
            info === null ? "removing its record" : "recording its end"
          } failed; kept in memory and retried until the store takes it:`,
          error,
        );
      }
      return false;
    }
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
      if (this.#writes.size > 0) {
        this.#delay = Math.min(this.#delay * 2, this.#maxDelay);
        this.#arm();
      } else {
        this.#delay = this.#firstDelay;
      }
    }, this.#delay);
  }

  /** Tries every waiting write once; returns how many still wait. */
  flush(): number {
    for (const [id, info] of [...this.#writes]) {
      if (this.#try(id, info)) {
        this.#writes.delete(id);
        this.#log(`Job ${id}: the store took the write it had refused`);
      }
    }
    return this.#writes.size;
  }

  /** Tries once more, stops retrying and returns the ids still unwritten. */
  close(): string[] {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.flush();
    return [...this.#writes.keys()];
  }
}
