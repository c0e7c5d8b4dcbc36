/**
 * Job output: one file per job, `<dataDir>/output/<id>.out`, written only by
 * the job itself (its stdout and stderr share one append-mode fd opened by
 * the startup shim), so the server holds no per-job pipe and its memory stays
 * flat whatever a job prints.
 *
 * New output is discovered by notification, never by polling: one inotify
 * watch (`Deno.watchFs`, non-recursive) on the output directory serves the
 * whole engine. Its modify events wake the readers waiting on that job and
 * feed the engine's output-cap check. A job's end wakes its readers too.
 * Should the event queue overflow (Deno then sends a `rescan` flag), every
 * waiting reader is woken, so a lost event can delay nobody.
 * @module
 */

/**
 * Size of one reader's buffer. A reader holds at most this buffer and the
 * chunk it last yielded, which bounds server memory per reader.
 */
export const READ_CHUNK_BYTES = 256 * 1024;

interface Waiter {
  promise: Promise<void>;
  resolve: () => void;
}

/** Options of {@linkcode OutputDir.open}. */
export interface OutputDirOptions {
  /** Called for every job whose file was modified (and for every job on a rescan, with `undefined`). */
  onChange?: (id: string | undefined) => void;
}

/** The output directory and its single watcher. */
export class OutputDir {
  /** Absolute path of the directory. */
  readonly dir: string;
  #watcher: Deno.FsWatcher;
  #loop: Promise<void>;
  #waiters = new Map<string, Waiter>();
  #onChange?: (id: string | undefined) => void;
  #closed = false;

  private constructor(dir: string, options: OutputDirOptions) {
    this.dir = dir;
    this.#onChange = options.onChange;
    this.#watcher = Deno.watchFs(dir, { recursive: false });
    this.#loop = this.#run();
  }

  /** Creates the directory when needed and starts watching it. */
  static async open(
    dir: string,
    options: OutputDirOptions = {},
  ): Promise<OutputDir> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    // Root's alone: jobs run as other uids and must not read others' output.
    await Deno.chmod(dir, 0o700);
    return new OutputDir(await Deno.realPath(dir), options);
  }

  /** Path of job `id`'s output file. */
  path(id: string): string {
    return `${this.dir}/${id}.out`;
  }

  /**
   * Creates job `id`'s output file, empty, before the job is spawned; fails
   * when the file exists.
   * Synchronous, on the start path (see the `cgroup/fs.ts` module doc).
   */
  create(id: string): void {
    // createNew: never truncate a file that is there (another job's output).
    Deno.writeFileSync(this.path(id), new Uint8Array(0), {
      mode: 0o600,
      createNew: true,
    });
  }

  /**
   * Resolves at the next change of job `id`'s output (or when {@linkcode
   * wake} is called for it). All readers of one job share one promise, so a
   * hundred followers cost one map entry.
   */
  changed(id: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    let waiter = this.#waiters.get(id);
    if (waiter === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => resolve = r);
      waiter = { promise, resolve };
      this.#waiters.set(id, waiter);
    }
    return waiter.promise;
  }

  /** Wakes the readers waiting on job `id` (used when the job has ended). */
  wake(id: string): void {
    const waiter = this.#waiters.get(id);
    if (waiter === undefined) return;
    this.#waiters.delete(id);
    waiter.resolve();
  }

  #wakeAll(): void {
    for (const id of [...this.#waiters.keys()]) this.wake(id);
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        for await (const event of this.#watcher) this.#dispatch(event);
      } catch (error) {
        if (!this.#closed) console.error("Output watcher failed:", error);
      }
      if (this.#closed) break;
      // The watcher ended without close(): events may have been missed, so
      // wake everyone (they re-read) and watch again.
      this.#wakeAll();
      this.#onChange?.(undefined);
      try {
        this.#watcher = Deno.watchFs(this.dir, { recursive: false });
      } catch (error) {
        // Followers still end when their job does (wake() at the end).
        console.error(
          "Output watcher could not be restarted; followers now see new output only when their job ends:",
          error,
        );
        return;
      }
    }
  }

  #dispatch(event: Deno.FsEvent): void {
    if (event.flag === "rescan") {
      this.#wakeAll();
      this.#onChange?.(undefined);
      return;
    }
    if (event.kind !== "modify") return;
    for (const path of event.paths) {
      const id = idOfPath(path);
      if (id === undefined) continue;
      this.wake(id);
      this.#onChange?.(id);
    }
  }

  /** Stops watching and wakes every waiting reader. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#watcher.close();
    } catch {
      // Already closed by an error in the loop.
    }
    await this.#loop;
    this.#wakeAll();
  }
}

/**
 * The job id of an output file's path (`.../<id>.out`), or undefined. Runs
 * for every inotify event, thousands a second while a job writes: one
 * string is allocated (the id), no regex match.
 */
function idOfPath(path: string): string | undefined {
  const start = path.lastIndexOf("/") + 1;
  const end = path.length - 4;
  if (end <= start || !path.endsWith(".out")) return undefined;
  if (path.charCodeAt(start) === 48) return undefined; // no leading "0"
  for (let i = start; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return path.slice(start, end);
}

/** What a reader needs to know about the job whose output it reads. */
export interface OutputSource {
  /** The output file. */
  path: string;
  /** Whether the job may still write (false once it has ended for good). */
  running(): boolean;
  /** Resolves at the next change of the output or at the job's end. */
  changed(): Promise<void>;
  /** Bytes past this offset are never delivered (the output cap). */
  limit: number;
}

/** Options of {@linkcode readOutput}. */
export interface ReadOutputOptions {
  /** Start offset in bytes (default 0). */
  offset?: number;
  /** Start this many bytes before the current end (overrides offset). */
  tail?: number;
  /** Keep reading until the job has ended and every byte is delivered. */
  follow?: boolean;
  /** Ends the stream early and releases the file. */
  signal?: AbortSignal;
  /**
   * The consumer is done with each chunk when it asks for the next one (it
   * copies or sends the bytes before resuming the iterator): every chunk is
   * then a view of one buffer that is read into again. Without it each full
   * chunk gets a new zeroed 256 KiB buffer, whose page faults and garbage
   * halved the throughput of reading finished output.
   */
  reuseBuffer?: boolean;
}

/**
 * Reads a job's output as chunks (binary-safe copies of at most
 * {@linkcode READ_CHUNK_BYTES}; views of one reused buffer with
 * `reuseBuffer`). Each reader has its own fd and buffer, so a
 * slow reader only delays itself. Without `follow` it ends at the end the
 * file had when reading started; with `follow` it ends once the job has
 * ended and all output is delivered. A missing file reads as empty.
 */
export async function* readOutput(
  source: OutputSource,
  options: ReadOutputOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const { signal, follow = false, reuseBuffer = false } = options;
  if (signal?.aborted) return;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(source.path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  let onAbort: (() => void) | undefined;
  try {
    const size = (await file.stat()).size;
    let position = options.tail !== undefined
      ? Math.max(0, Math.min(size, source.limit) - options.tail)
      : options.offset ?? 0;
    if (position > 0) await file.seek(position, Deno.SeekMode.Start);
    let buffer = new Uint8Array(READ_CHUNK_BYTES);
    // Without follow, "the current end" is the size when reading began.
    let end = follow ? source.limit : Math.min(size, source.limit);
    let abortPromise: Promise<void> | undefined;
    if (signal !== undefined) {
      abortPromise = new Promise((resolve) => onAbort = resolve);
      signal.addEventListener("abort", onAbort!, { once: true });
    }

    while (true) {
      // Take the job's state and subscribe to changes before draining, so a
      // write or the job's end that lands during the drain is never missed.
      const ended = !follow || !source.running();
      const changed = ended ? undefined : source.changed();
      if (ended && follow) {
        end = Math.min((await file.stat()).size, source.limit);
      }
      while (position < end) {
        if (signal?.aborted) return;
        const want = Math.min(buffer.length, end - position);
        const n = await file.read(buffer.subarray(0, want));
        if (n === null || n === 0) break;
        position += n;
        if (reuseBuffer) {
          yield buffer.subarray(0, n);
        } else if (n >= buffer.length / 2) {
          // Hand the buffer itself over and read on into a new one: no copy
          // for bulk data, and still at most two buffers per reader.
          const chunk = buffer.subarray(0, n);
          buffer = new Uint8Array(READ_CHUNK_BYTES);
          yield chunk;
        } else {
          // A small read (a follower's next line): copy it out so a chunk
          // kept by the consumer does not pin a whole buffer.
          yield buffer.slice(0, n);
        }
      }
      if (ended || signal?.aborted) return;
      await (abortPromise ? Promise.race([changed, abortPromise]) : changed);
      if (signal?.aborted) return;
    }
  } finally {
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    file.close();
  }
}
