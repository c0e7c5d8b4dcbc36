/**
 * The job store: every job record (everything `status` shows) in an embedded
 * SQLite database (`node:sqlite`), so that jobs outlive the server process.
 *
 * The database runs in WAL mode with `synchronous=NORMAL`: a committed record
 * survives the server being killed (`kill -9`), which is the failure the
 * engine recovers from; only an OS crash may lose the last few records.
 * Ids are SQLite's AUTOINCREMENT row ids, so an id is never reused for the
 * data dir's lifetime, even after the newest job's row is deleted.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { emptyUsage } from "../../cgroup/mod.ts";
import type { JobInfo, Limits, Usage } from "./types.ts";

/** What a new job's row holds; the store assigns the id. */
export type NewJob =
  & Pick<
    JobInfo,
    "owner" | "command" | "args" | "cwd" | "startedAt" | "limits"
  >
  & Partial<Pick<JobInfo, "account" | "uid">>;

/** How a job ended, written once when it has. */
export type JobEnd = Pick<
  JobInfo,
  | "endedAt"
  | "exitCode"
  | "signal"
  | "oomKilled"
  | "stopped"
  | "stoppedBy"
  | "lostInRestart"
  | "outputLimitReached"
  | "usage"
  | "outputBytes"
  | "startError"
>;

/** Which part of the list {@linkcode JobStore.list} returns. */
export interface ListPage {
  /** Only jobs with a larger id (a decimal id, as the engine gives). */
  after?: string;
  /** At most this many jobs. */
  limit?: number;
}

/** Options of {@linkcode JobStore.open}. */
export interface StoreOptions {
  /** How long to wait for another holder of the database (default 2 s). */
  busyTimeoutMs?: number;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  command TEXT NOT NULL,
  args TEXT NOT NULL,
  cwd TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('running', 'finished')),
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  exit_code INTEGER,
  signal TEXT,
  oom_killed INTEGER NOT NULL DEFAULT 0,
  stopped INTEGER NOT NULL DEFAULT 0,
  stopped_by TEXT,
  lost_in_restart INTEGER NOT NULL DEFAULT 0,
  output_limit_reached INTEGER NOT NULL DEFAULT 0,
  limits TEXT NOT NULL,
  usage TEXT NOT NULL,
  output_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, id);
CREATE INDEX IF NOT EXISTS jobs_running ON jobs (state) WHERE state = 'running';
CREATE TABLE IF NOT EXISTS identities (
  owner TEXT PRIMARY KEY,
  uid INTEGER NOT NULL UNIQUE
);
`;

// Columns added after the first release: added to an existing jobs.db when
// missing. Rows from before them ran as root, which is what NULL reads as.
const ADDED_COLUMNS: Record<string, string> = {
  account: "TEXT",
  uid: "INTEGER",
  start_error: "TEXT",
};

type Row = Record<string, unknown>;

/**
 * Adds a column to an existing table unless it is there already: additive
 * and idempotent, so a jobs.db from an older server opens unchanged.
 */
function addColumn(
  db: DatabaseSync,
  table: string,
  column: string,
  type: string,
): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as {
    name: string;
  }[];
  if (columns.some((c) => c.name === column)) return;
  db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}

function toInfo(row: Row): JobInfo {
  const info: JobInfo = {
    id: String(row.id),
    owner: row.owner as string,
    command: row.command as string,
    args: JSON.parse(row.args as string) as string[],
    cwd: row.cwd as string,
    state: row.state as JobInfo["state"],
    startedAt: new Date(row.started_at as number),
    oomKilled: row.oom_killed === 1,
    stopped: row.stopped === 1,
    lostInRestart: row.lost_in_restart === 1,
    outputLimitReached: row.output_limit_reached === 1,
    limits: JSON.parse(row.limits as string) as Limits,
    usage: { ...emptyUsage(), ...JSON.parse(row.usage as string) as Usage },
    outputBytes: row.output_bytes as number,
    account: (row.account as string | null) ?? "root",
    uid: (row.uid as number | null) ?? 0,
  };
  if (row.start_error != null) info.startError = row.start_error as string;
  if (row.ended_at !== null) info.endedAt = new Date(row.ended_at as number);
  if (row.exit_code !== null) info.exitCode = row.exit_code as number;
  if (row.signal !== null) info.signal = row.signal as string;
  if (row.stopped_by !== null) info.stoppedBy = row.stopped_by as string;
  return info;
}

// SQLite's primary result codes for "another connection holds the lock".
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

/** Whether a node:sqlite error is SQLITE_BUSY or SQLITE_LOCKED. */
function isLocked(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  // Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary one in the low byte.
  return typeof errcode === "number" &&
    [SQLITE_BUSY, SQLITE_LOCKED].includes(errcode & 0xff);
}

/** Job records in `<dataDir>/jobs.db`. All calls are synchronous and fast. */
export class JobStore {
  #db: DatabaseSync;
  #insert: StatementSync;
  #finish: StatementSync;
  #get: StatementSync;
  #listAll: StatementSync;
  #listOwner: StatementSync;
  #running: StatementSync;
  #delete: StatementSync;
  #setCgroupPaths: StatementSync;
  #getCgroupPaths: StatementSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare(
      `INSERT INTO jobs (owner, command, args, cwd, state, started_at, limits, usage, account, uid)
       VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)`,
    );
    this.#finish = db.prepare(
      `UPDATE jobs SET state = 'finished', ended_at = ?, exit_code = ?,
         signal = ?, oom_killed = ?, stopped = ?, stopped_by = ?,
         lost_in_restart = ?, output_limit_reached = ?, usage = ?,
         output_bytes = ?, start_error = ?
       WHERE id = ?`,
    );
    this.#get = db.prepare("SELECT * FROM jobs WHERE id = ?");
    this.#listAll = db.prepare(
      "SELECT * FROM jobs WHERE id > ? ORDER BY id LIMIT ?",
    );
    this.#listOwner = db.prepare(
      "SELECT * FROM jobs WHERE owner = ? AND id > ? ORDER BY id LIMIT ?",
    );
    this.#running = db.prepare(
      "SELECT * FROM jobs WHERE state = 'running' ORDER BY id",
    );
    this.#delete = db.prepare("DELETE FROM jobs WHERE id = ?");
    this.#setCgroupPaths = db.prepare(
      "UPDATE jobs SET cgroup_paths = ? WHERE id = ?",
    );
    this.#getCgroupPaths = db.prepare(
      "SELECT cgroup_paths FROM jobs WHERE id = ?",
    );
  }

  /**
   * Opens (creating when needed) the database at `path`. The database is
   * held with an exclusive lock for as long as it is open, so a second
   * server on the same data dir fails to start instead of treating the
   * first one's running jobs as lost. The kernel drops the lock when the
   * holder dies, even by `kill -9`.
   */
  static open(path: string, options: StoreOptions = {}): JobStore {
    const db = new DatabaseSync(path);
    try {
      // The statements that may meet another server's lock run as prepared
      // statements: node:sqlite's exec() errors carry no SQLite result code
      // (only ERR_SQLITE_ERROR in Deno 2.9.6), a statement's carry errcode.
      for (
        const sql of [
          `PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 2000}`,
          "PRAGMA locking_mode = EXCLUSIVE",
          "PRAGMA journal_mode = WAL",
          "PRAGMA synchronous = NORMAL",
          // Take the exclusive lock now rather than at the first job.
          "BEGIN IMMEDIATE",
          "COMMIT",
        ]
      ) db.prepare(sql).run();
      const { user_version: version } = db.prepare("PRAGMA user_version")
        .get() as { user_version: number };
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `Job store ${path} has schema version ${version}, newer than this server's ${SCHEMA_VERSION}: upgrade telejob-server or use another --data-dir`,
        );
      }
      db.exec(SCHEMA);
      addColumn(db, "jobs", "cgroup_paths", "TEXT");
      for (const [name, type] of Object.entries(ADDED_COLUMNS)) {
        addColumn(db, "jobs", name, type);
      }
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      return new JobStore(db);
    } catch (error) {
      db.close();
      if (isLocked(error)) {
        throw new Error(
          `Job store ${path} is in use by another telejob-server: stop that server or use another --data-dir`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * A random id of this data dir, made on first use and kept. Job cgroups are
   * named after it, so two servers below one cgroup parent (each with its own
   * data dir) neither collide on `telejob-1` nor sweep each other's jobs away
   * as stale at start-up.
   */
  instanceId(): string {
    const row = this.#db.prepare(
      "SELECT value FROM meta WHERE key = 'instance'",
    )
      .get() as { value: string } | undefined;
    if (row !== undefined) return row.value;
    const id = crypto.randomUUID().replaceAll("-", "").slice(0, 8);
    this.#db.prepare("INSERT INTO meta (key, value) VALUES ('instance', ?)")
      .run(id);
    return id;
  }

  /** The uid allocated to `owner`'s default identity, if any. */
  identityUid(owner: string): number | undefined {
    const row = this.#db.prepare("SELECT uid FROM identities WHERE owner = ?")
      .get(owner) as { uid: number } | undefined;
    return row?.uid;
  }

  /** Every uid allocated to a default identity. */
  identityUids(): number[] {
    return (this.#db.prepare("SELECT uid FROM identities").all() as {
      uid: number;
    }[]).map((row) => row.uid);
  }

  /** Records `uid` as `owner`'s default identity, for good. */
  addIdentity(owner: string, uid: number): void {
    this.#db.prepare("INSERT INTO identities (owner, uid) VALUES (?, ?)")
      .run(owner, uid);
  }

  /**
   * Records a new running job and returns its id; throws when the record
   * was not committed. (Not `INSERT ... RETURNING` through `get()`: that
   * returns the row after its first step and drops the commit's error, so
   * on a full disk it handed out an id that was never stored, and again.)
   */
  insert(job: NewJob): string {
    const { lastInsertRowid } = this.#insert.run(
      job.owner,
      job.command,
      JSON.stringify(job.args),
      job.cwd,
      job.startedAt.getTime(),
      JSON.stringify(job.limits),
      JSON.stringify(emptyUsage()),
      job.account ?? "root",
      job.uid ?? 0,
    );
    return String(lastInsertRowid);
  }

  /** Marks a job finished with how it ended. */
  finish(id: string, end: JobEnd): void {
    this.#finish.run(
      (end.endedAt ?? new Date()).getTime(),
      end.exitCode ?? null,
      end.signal ?? null,
      end.oomKilled ? 1 : 0,
      end.stopped ? 1 : 0,
      end.stoppedBy ?? null,
      end.lostInRestart ? 1 : 0,
      end.outputLimitReached ? 1 : 0,
      JSON.stringify(end.usage),
      end.outputBytes,
      end.startError ?? null,
      Number(id),
    );
  }

  /** One job's record, or undefined when there is none. */
  get(id: string): JobInfo | undefined {
    const row = this.#get.get(Number(id)) as Row | undefined;
    return row === undefined ? undefined : toInfo(row);
  }

  /**
   * Jobs (of `owner` when given), oldest first: those with an id above
   * `after` (default: from the first), at most `limit` (default: all).
   */
  list(owner?: string, page: ListPage = {}): JobInfo[] {
    const after = Number(page.after ?? 0);
    const limit = page.limit ?? -1; // SQLite: a negative LIMIT is none.
    const rows = owner === undefined
      ? this.#listAll.all(after, limit)
      : this.#listOwner.all(owner, after, limit);
    return (rows as Row[]).map(toInfo);
  }

  /** Jobs recorded as running (after a crash: those lost in it). */
  running(): JobInfo[] {
    return (this.#running.all() as Row[]).map(toInfo);
  }

  /**
   * Records the absolute directories of a job's cgroup (one per v1
   * hierarchy, one on v2), so that a restarted server finds them even when
   * it now places job cgroups elsewhere.
   */
  setCgroupPaths(id: string, paths: readonly string[]): void {
    this.#setCgroupPaths.run(JSON.stringify(paths), Number(id));
  }

  /** The cgroup directories recorded for a job, if any were. */
  cgroupPaths(id: string): string[] | undefined {
    const row = this.#getCgroupPaths.get(Number(id)) as
      | { cgroup_paths: string | null }
      | undefined;
    if (typeof row?.cgroup_paths !== "string") return undefined;
    const paths = JSON.parse(row.cgroup_paths) as unknown;
    return Array.isArray(paths) &&
        paths.every((p) => typeof p === "string" && p.startsWith("/"))
      ? paths
      : undefined;
  }

  /** Deletes a job's record (a start that failed before it spawned). */
  delete(id: string): void {
    this.#delete.run(Number(id));
  }

  /** Closes the database. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
