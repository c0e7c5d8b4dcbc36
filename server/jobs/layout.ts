/**
 * File modes of the data dir, so that jobs (which run as other uids) reach
 * their homes and nothing else of it:
 *
 *     <data-dir>/             0711 root   searchable, not listable
 *     <data-dir>/jobs.db*     0600 root   the store (and its WAL files)
 *     <data-dir>/output/      0700 root   every job's output (files 0600)
 *     <data-dir>/home/        0711 root
 *     <data-dir>/home/<name>/ 0700 the identity's own
 *
 * Modes are set on every start, so a data dir from an older server (or one
 * a person loosened) is tightened again.
 * @module
 */

/** Creates the data dir when needed and gives it mode 0711. */
export async function prepareDataDir(dataDir: string): Promise<void> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o711 });
  await Deno.chmod(dataDir, 0o711);
}

/** Gives the store's files mode 0600 (SQLite creates them 0644). */
export async function protectStore(path: string): Promise<void> {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      await Deno.chmod(file, 0o600);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/**
 * Whether a private key file can be read or written by anyone but its
 * owner; returns a warning for the log, or undefined when it is private.
 */
export function keyFileWarning(path: string): string | undefined {
  let mode: number | null;
  try {
    mode = Deno.statSync(path).mode;
  } catch {
    return undefined; // Loading it reports that.
  }
  if (mode === null || (mode & 0o077) === 0) return undefined;
  return `The server key ${path} can be read by group or others (mode ${
    (mode & 0o777).toString(8).padStart(4, "0")
  }): anyone on this host who can read it can impersonate the server. Run "chmod 600 ${path}"`;
}
