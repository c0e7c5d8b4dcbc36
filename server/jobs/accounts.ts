/**
 * The host's accounts as the job engine needs them: login accounts from
 * `/etc/passwd` and their groups from `/etc/group` (local files only; NSS
 * sources such as LDAP are not consulted), and whether a uid with its groups
 * may search a directory, judged from mode bits, owners and groups along the
 * path (ACLs and LSMs are not consulted: the shim's own `chdir` as the job's
 * uid stays the final word and reports a clear failure).
 * @module
 */

/** A login account of the host. */
export interface Account {
  /** Login name. */
  name: string;
  uid: number;
  gid: number;
  /** Supplementary group ids: every `/etc/group` entry that lists the login. */
  groups: number[];
  /** Home directory from `/etc/passwd`. */
  home: string;
}

/** Where the account files are; tests may point elsewhere. */
export interface AccountFiles {
  /** Default `/etc/passwd`. */
  passwd?: string;
  /** Default `/etc/group`. */
  group?: string;
}

function readLines(path: string): string[][] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return text.split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"));
}

/** Looks `name` up in the account files; undefined when it has no entry. */
export function lookupAccount(
  name: string,
  files: AccountFiles = {},
): Account | undefined {
  const entry = readLines(files.passwd ?? "/etc/passwd").find((fields) =>
    fields[0] === name
  );
  if (entry === undefined || entry.length < 7) return undefined;
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) {
    return undefined;
  }
  const groups = new Set<number>();
  for (const fields of readLines(files.group ?? "/etc/group")) {
    const members = (fields[3] ?? "").split(",");
    const id = Number(fields[2]);
    if (members.includes(name) && Number.isSafeInteger(id) && id !== gid) {
      groups.add(id);
    }
  }
  return { name, uid, gid, groups: [...groups], home: entry[5] };
}

/** Every uid of `/etc/passwd` and every gid of `/etc/group`. */
export function usedIds(files: AccountFiles = {}): Set<number> {
  const ids = new Set<number>();
  for (const fields of readLines(files.passwd ?? "/etc/passwd")) {
    ids.add(Number(fields[2]));
    ids.add(Number(fields[3]));
  }
  for (const fields of readLines(files.group ?? "/etc/group")) {
    ids.add(Number(fields[2]));
  }
  return ids;
}

/** Who is asking: a uid, its primary gid and its supplementary groups. */
export interface Credentials {
  uid: number;
  gid: number;
  groups: readonly number[];
}

/**
 * Whether `who` may use permission class `bits` (0o1 search/execute, 0o2
 * write, 0o4 read) on a file: the owner's bits for its owner, the group's for
 * a member, the others' for everyone else, as the kernel decides without
 * ACLs. Root may do anything but execute a file with no execute bit.
 */
export function permits(
  info: Deno.FileInfo,
  who: Credentials,
  bits: number,
): boolean {
  const mode = info.mode ?? 0;
  if (who.uid === 0) {
    return bits !== 1 || info.isDirectory || (mode & 0o111) !== 0;
  }
  if (info.uid === who.uid) return ((mode >> 6) & bits) === bits;
  if (info.gid === who.gid || who.groups.includes(info.gid ?? -1)) {
    return ((mode >> 3) & bits) === bits;
  }
  return (mode & bits) === bits;
}

/**
 * The first directory on the way to `path` (itself included) that `who`
 * cannot search, or undefined when every one can be. Symbolic links are
 * resolved first (the kernel checks the directories the link leads to; the
 * links themselves need no permission). A path that does not exist is
 * returned as it is.
 */
export function unsearchable(
  path: string,
  who: Credentials,
): string | undefined {
  if (who.uid === 0) return undefined;
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch {
    return path;
  }
  const parts = real.split("/").filter((part) => part !== "");
  for (let i = 0; i <= parts.length; i++) {
    const dir = "/" + parts.slice(0, i).join("/");
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(dir);
    } catch {
      return dir;
    }
    if (!permits(info, who, 1)) return dir;
  }
  return undefined;
}
