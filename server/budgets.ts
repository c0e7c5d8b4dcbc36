/**
 * Resource budgets the server enforces against clients that press: calls per
 * user, a reserve of file descriptors, and the error that names the budget a
 * call ran into. Connection budgets and the handshake deadline live in
 * `admission.ts`; streams per connection are HTTP/2's
 * SETTINGS_MAX_CONCURRENT_STREAMS (`grpc.max_concurrent_streams`).
 *
 * Why a reserve of file descriptors: every connection, every Logs stream
 * (its own fd on the output file), the store, each job start (output file,
 * spawn) and accept itself need one. When clients take the last one, the
 * runtime fails in places we cannot catch: Deno 2.9.6 panics when it formats
 * an error's stack while at EMFILE (see `isFdExhaustion`), and its listener
 * stops accepting for good after accept fails with EMFILE. So connections
 * and streams are refused while fewer than `fdReserve` descriptors are free,
 * which leaves those for accept, the store, output files and job starts,
 * and the listen backlog is kept below a quarter of the reserve
 * ({@linkcode listenBacklog}). At EMFILE Deno 2.9.6 also panics when a
 * child process exits (ext/signals) — one more reason never to get there.
 * @module
 */

/** The budgets, as configured by flags (see `config.ts`). */
export interface BudgetConfig {
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection. */
  maxStreamsPerConnection: number;
  /** Calls (unary and streams) in progress at once for one user (certificate CN). */
  maxCallsPerUser: number;
  /** Client connections open at once, in total. */
  maxConnections: number;
  /** Client connections open at once from one IP address. */
  maxConnectionsPerAddress: number;
  /** How long a new connection may take to finish its TLS handshake. */
  handshakeTimeoutMs: number;
  /** Connections and streams are refused while fewer fds than this are free. */
  fdReserve: number;
}

/** Defaults of {@linkcode BudgetConfig}; README.md "Resource budgets" states them. */
export const DEFAULT_BUDGETS: Readonly<BudgetConfig> = Object.freeze({
  maxStreamsPerConnection: 100,
  maxCallsPerUser: 256,
  maxConnections: 1024,
  maxConnectionsPerAddress: 128,
  handshakeTimeoutMs: 10_000,
  fdReserve: 128,
});

/**
 * The listen backlog for `fdReserve`: Deno accepts every connection queued
 * in the backlog in one go, before JavaScript can close the ones over
 * budget, so a burst as large as the backlog must fit in the part of the
 * reserve that connections may not use.
 */
export function listenBacklog(fdReserve: number): number {
  return fdReserve <= 0 ? 511 : Math.max(8, Math.floor(fdReserve / 4));
}

/** A call refused because a budget is used up: RESOURCE_EXHAUSTED. */
export class BudgetError extends Error {
  /** Creates the error; `message` names the budget and its flag. */
  constructor(message: string) {
    super(message);
    this.name = "BudgetError";
  }
}

/**
 * Whether `error` is the system running out of file descriptors (EMFILE for
 * the process, ENFILE for the host). Looks only at `code` and `message`:
 * reading `error.stack` at EMFILE panics Deno 2.9.6 (to source-map a
 * TypeScript frame it re-reads the emitted module from its cache, that open
 * fails, it falls back to transpiling with swc, whose stack-size probe opens
 * /proc/self/maps, fails, and asserts: `left: 24, right: 0`).
 */
export function isFdExhaustion(error: unknown): boolean {
  if (!error || typeof error !== "object") return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === "EMFILE" || code === "ENFILE") return true;
  return typeof message === "string" &&
    /\b(os error 2[34]|EMFILE|ENFILE|Too many open files)\b/.test(message);
}

/** How many fds this process may open: the soft RLIMIT_NOFILE. */
export function readFdLimit(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (match && match[1] !== "unlimited") return Number(match[1]);
  } catch {
    // Not Linux, or out of fds right now: no limit we can see.
  }
  return Number.POSITIVE_INFINITY;
}

/** How many fds this process has open, or `undefined` when it cannot tell. */
export function countOpenFds(): number | undefined {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    // The directory's own fd was counted while it was open.
    return n - 1;
  } catch {
    return undefined;
  }
}

/** Options of {@linkcode FdBudget}. */
export interface FdBudgetOptions {
  /** Descriptors kept free for accept, the store, output files and starts. */
  reserve: number;
  /** The limit (default: the soft RLIMIT_NOFILE, read with each count, as `prlimit` may change it). */
  limit?: number;
  /** Counts open fds (default: entries of /proc/self/fd). */
  count?: () => number | undefined;
  /** How long a count is reused, in ms (default 100). */
  refreshMs?: number;
}

/**
 * The fd reserve: {@linkcode FdBudget.refusal} says whether a new connection
 * or stream would eat into it. Counting /proc/self/fd costs ~0.1 ms per
 * thousand fds, so a count is reused for `refreshMs`, plus one per fd
 * granted since.
 */
export class FdBudget {
  readonly #reserve: number;
  readonly #fixedLimit?: number;
  #limit: number;
  readonly #count: () => number | undefined;
  readonly #refreshMs: number;
  #counted = 0;
  #countedAt = Number.NEGATIVE_INFINITY;
  #granted = 0;

  /** Creates the budget. */
  constructor(options: FdBudgetOptions) {
    this.#reserve = options.reserve;
    this.#fixedLimit = options.limit;
    this.#limit = options.limit ?? readFdLimit();
    this.#count = options.count ?? countOpenFds;
    this.#refreshMs = options.refreshMs ?? 100;
  }

  /** The fd limit in force. */
  get limit(): number {
    return this.#limit;
  }

  /** Estimated fds open now; `maxAgeMs` bounds the age of the count used. */
  inUse(maxAgeMs: number = this.#refreshMs): number {
    const now = performance.now();
    if (now - this.#countedAt >= maxAgeMs) {
      this.#limit = this.#fixedLimit ?? readFdLimit();
      // Unknown (the count itself failed): as good as exhausted.
      this.#counted = this.#count() ?? this.#limit;
      this.#countedAt = now;
      this.#granted = 0;
    }
    return this.#counted + this.#granted;
  }

  /**
   * Why one more fd for a client must be refused, or `undefined` (and the
   * fd is counted as taken) when it may have it. Streams stop at the
   * reserve, job starts (a running job holds its pidfd) at three quarters of
   * it, connections at half of it: a client can still connect (and be told
   * why its streams or jobs are refused) while those are at their budget.
   * The last half stays for accept (the listen backlog is a quarter), the
   * store and the server's own work: no number of clients or jobs can wedge
   * the listener.
   */
  refusal(
    kind: "stream" | "connection" | "job" = "stream",
  ): string | undefined {
    if (this.#reserve <= 0) return undefined;
    const keep = kind === "stream"
      ? this.#reserve
      : kind === "job"
      ? Math.ceil(this.#reserve * 3 / 4)
      : Math.ceil(this.#reserve / 2);
    let free = this.#limit - this.inUse();
    // The estimate counts every fd granted since the last count as still
    // open; before refusing, count again (at most every 10 ms).
    if (free <= keep) free = this.#limit - this.inUse(10);
    if (!Number.isFinite(free)) return undefined;
    if (free <= keep) {
      return `the server keeps its last ${keep} of ${this.#limit} file descriptors free for ${
        kind === "connection"
          ? "its own work"
          : "its own work and new connections"
      } (--fd-reserve ${this.#reserve}) and ${Math.max(0, free)} are free`;
    }
    this.#granted++;
    return undefined;
  }
}

/**
 * Calls in progress per user: {@linkcode CallBudget.acquire} counts one and
 * returns its release, or throws {@linkcode BudgetError} at the budget.
 */
export class CallBudget {
  readonly #max: number;
  readonly #active = new Map<string, number>();

  /** Creates the budget: at most `max` calls at once per user. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Calls `user` has in progress. */
  active(user: string): number {
    return this.#active.get(user) ?? 0;
  }

  /** Counts a call of `user`; the returned function (idempotent) ends it. */
  acquire(user: string): () => void {
    const n = this.active(user);
    if (n >= this.#max) {
      throw new BudgetError(
        `Too many calls in progress for user ${
          JSON.stringify(user)
        }: the per-user budget is ${this.#max} (--max-calls-per-user); end some streams or retry later`,
      );
    }
    this.#active.set(user, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.active(user) - 1;
      if (left <= 0) this.#active.delete(user);
      else this.#active.set(user, left);
    };
  }
}
