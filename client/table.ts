/**
 * How `telejob status` and `telejob list` show jobs: the seed's table
 * (`ID COMMAND STATE STARTED STOPPED EXIT`, columns two spaces apart, as Go's
 * tabwriter made them) and the `--output json` form.
 * @module
 */
import { type Job, JobState } from "../proto/gen/telejob/v1/telejob.ts";
import { type FormatOptions, formatTime } from "./time_format.ts";

/** Column headings of the job table, as in the seed. */
export const HEADER: readonly string[] = [
  "ID",
  "COMMAND",
  "STATE",
  "STARTED",
  "STOPPED",
  "EXIT",
];

/**
 * Lays out rows in columns: every cell but the last of a row is padded to
 * its column's width plus two spaces (Go's tabwriter with padding 2), and
 * trailing blanks are trimmed.
 */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows.map((row) =>
    row.map((cell, i) =>
      i === row.length - 1
        ? cell
        : cell + " ".repeat(widths[i] + 2 - [...cell].length)
    ).join("").trimEnd() + "\n"
  ).join("");
}

/**
 * The STATE column: `running`; for an ended job `stopped` when a user
 * stopped it, `lost` when it was running while an earlier server process
 * died, and `exited` otherwise (however it ended; EXIT says how).
 */
export function jobState(job: Job): string {
  if (job.state === JobState.JOB_STATE_RUNNING) return "running";
  if (job.lostInRestart) return "lost";
  if (job.stopped) return "stopped";
  return "exited";
}

/**
 * The EXIT column: empty while running; else `oom` when the kernel's OOM
 * killer struck, `stopped` when a user stopped it, `output-limit` when it
 * was killed for reaching the output cap, the signal's name (e.g. `SIGSEGV`)
 * when a signal ended it, or the exit code.
 */
export function jobExit(job: Job): string {
  if (job.state === JobState.JOB_STATE_RUNNING) return "";
  if (job.oomKilled) return "oom";
  if (job.stopped) return "stopped";
  if (job.outputLimitReached) return "output-limit";
  if (job.startError) return "not-started";
  if (job.signal) return job.signal;
  if (job.exitCode !== undefined) return String(job.exitCode);
  return "";
}

const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Characters a table must not print raw: C0 and C1 controls (Cc), format
 * characters such as zero-width spaces and bidi overrides (Cf), and the line
 * and paragraph separators (Zl, Zp). Raw, they hide or reorder text, so
 * `ad\u200bmin` would look like `admin` and U+202E would flip a command.
 */
const HIDDEN = /\p{Cc}|\p{Cf}|\p{Zl}|\p{Zp}/u;
const HIDDEN_OR_QUOTE = /\p{Cc}|\p{Cf}|\p{Zl}|\p{Zp}|[\\']/gu;

/** One character as Bash's `$'...'` writes it. */
function escapeChar(c: string): string {
  switch (c) {
    case "\\":
      return "\\\\";
    case "'":
      return "\\'";
    case "\n":
      return "\\n";
    case "\t":
      return "\\t";
    case "\r":
      return "\\r";
  }
  const code = c.codePointAt(0)!;
  if (code < 0x80) return "\\x" + code.toString(16).padStart(2, "0");
  if (code <= 0xffff) return "\\u" + code.toString(16).padStart(4, "0");
  return "\\U" + code.toString(16).padStart(8, "0");
}

/** Quotes one word the way a POSIX shell would read it back. */
export function shellQuote(word: string): string {
  if (PLAIN_WORD.test(word)) return word;
  if (HIDDEN.test(word)) {
    // Bash's $'...' keeps control, format and bidi characters visible and
    // unambiguous (a newline would break the table, U+200B would vanish).
    return `$'${word.replace(HIDDEN_OR_QUOTE, escapeChar)}'`;
  }
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * A name (an owner) as a table shows it: as it is when every character
 * prints, else quoted like {@linkcode shellQuote} so that nothing is hidden.
 */
export function safeName(name: string): string {
  return HIDDEN.test(name) ? shellQuote(name) : name;
}

/** The COMMAND column: the command and its arguments, shell-quoted. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map(shellQuote).join(" ");
}

/** Options of {@linkcode jobTable}. */
export interface TableOptions extends FormatOptions {
  /** Go layout for STARTED and STOPPED (see `time_format.ts`). */
  layout: string;
  /**
   * Adds an OWNER column after ID: for an admin looking at other users'
   * jobs. Without it the table is exactly the seed's.
   */
  owner?: boolean;
  /**
   * Adds USER and UID columns at the end (`--output wide`): the server
   * account the job runs as. Without it the table is exactly the seed's.
   */
  wide?: boolean;
}

/** Renders the seed's table for `jobs`, heading first. */
export function jobTable(jobs: readonly Job[], options: TableOptions): string {
  const time = (d: Date | undefined) =>
    d ? formatTime(d, options.layout, options) : "";
  const withOwner = (row: string[], owner: string) =>
    options.owner ? [row[0], owner, ...row.slice(1)] : row;
  const withUser = (row: string[], user: string, uid: string) =>
    options.wide ? [...row, user, uid] : row;
  return formatTable([
    withUser(withOwner([...HEADER], "OWNER"), "USER", "UID"),
    ...jobs.map((job) =>
      withUser(
        withOwner([
          job.id,
          commandLine(job.command, job.args),
          jobState(job),
          time(job.startedAt),
          time(job.endedAt),
          jobExit(job),
        ], safeName(job.owner)),
        safeName(job.account),
        String(job.uid),
      )
    ),
  ]);
}

/** A job as `--output json` prints it: the API's fields plus the columns. */
export interface JobJson {
  id: string;
  owner: string;
  command: string;
  args: string[];
  cwd: string;
  /** As in the table: running, stopped, exited or lost. */
  state: string;
  /** As in the table's EXIT column. */
  exit: string;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
  signal: string | null;
  oomKilled: boolean;
  stopped: boolean;
  stoppedBy: string | null;
  lostInRestart: boolean;
  outputLimitReached: boolean;
  limits: Job["limits"] | null;
  usage: Job["usage"] | null;
  outputBytes: number;
  /** The Unix account the job runs as, and its uid. */
  account: string;
  uid: number;
  /** Why the command never ran (the startup shim failed), else null. */
  startError: string | null;
}

/** Converts a job for `--output json` (times in RFC 3339, UTC). */
export function jobJson(job: Job): JobJson {
  return {
    id: job.id,
    owner: job.owner,
    command: job.command,
    args: job.args,
    cwd: job.cwd,
    state: jobState(job),
    exit: jobExit(job),
    startedAt: job.startedAt?.toISOString() ?? null,
    endedAt: job.endedAt?.toISOString() ?? null,
    exitCode: job.exitCode ?? null,
    signal: job.signal || null,
    oomKilled: job.oomKilled,
    stopped: job.stopped,
    stoppedBy: job.stoppedBy || null,
    lostInRestart: job.lostInRestart,
    outputLimitReached: job.outputLimitReached,
    limits: job.limits ?? null,
    usage: job.usage ?? null,
    outputBytes: job.outputBytes,
    account: job.account,
    uid: job.uid,
    startError: job.startError || null,
  };
}
