/**
 * How the engine names what went wrong around a job: a kernel resource
 * shortage, a full data dir, the startup shim's own failure.
 * @module
 */
import { SHIM_FAILURE_PREFIX } from "../../cgroup/mod.ts";
import { JobError } from "./errors.ts";

/** The errno name of a Deno or Node error (`ENOSPC`), if it has one. */
export function errorCode(error: unknown): string | undefined {
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
export function exhausted(error: unknown): JobError | undefined {
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
export function dataDirFull(): JobError {
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
export function shimFailure(outputPath: string): string | undefined {
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
