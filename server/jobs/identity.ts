/**
 * Who a job runs as. Like systemd's `DynamicUser=`, every owner (client
 * certificate CN) gets by default an unprivileged Unix identity of its own,
 * with no login account: a uid (and the gid of the same number) from a
 * reserved range that no `/etc/passwd` or `/etc/group` entry uses, kept in
 * the job store so it is the same after a restart, named `telejob-<uid>`, with
 * a home `<data-dir>/home/telejob-<uid>` (mode 0700, owned by it).
 *
 * Like Teleport's certificate-to-login mapping, a job may instead ask for a
 * login account (`--user LOGIN`); the server's policy (`--run-as
 * 'CN=LOGIN[,LOGIN...]'`, `*` for every CN) must name it for the owner.
 * Nobody gets an account implicitly, administrators and root included.
 * @module
 */
import {
  type Account,
  lookupAccount,
  unsearchable,
  usedIds,
} from "./accounts.ts";
import { JobError } from "./errors.ts";
import type { JobStore } from "./store.ts";

/** One `--run-as` entry: owner (or `*`) and the accounts it may use. */
export interface RunAsRule {
  /** Certificate CN, or `*` for every owner. */
  owner: string;
  /** Login names. */
  logins: string[];
}

/** A reserved id range, both ends included. */
export interface IdRange {
  first: number;
  last: number;
}

/**
 * Default range of the per-owner identities: 2,000,000,000–2,000,999,999,
 * inside what systemd leaves unassigned (between the container range that
 * ends at 1,879,048,191 and the foreign range from 2,147,352,576), far from
 * login users, DynamicUser (61184–65519) and the usual subuid blocks.
 */
export const DEFAULT_UID_RANGE: IdRange = {
  first: 2_000_000_000,
  last: 2_000_999_999,
};

/** What a job runs as, resolved. */
export interface Identity {
  /** `telejob-<uid>` for a default identity, else the login name. */
  name: string;
  uid: number;
  gid: number;
  groups: number[];
  /** HOME. */
  home: string;
  /** The default working directory: the home when it can enter it, else `/`. */
  cwd: string;
}

function usableCwd(home: string, who: Omit<Identity, "cwd">): string {
  return unsearchable(home, who) === undefined ? home : "/";
}

/** Parses `--run-as 'CN=LOGIN[,LOGIN...]'`; throws an Error saying what is wrong. */
export function parseRunAs(value: string): RunAsRule {
  const eq = value.lastIndexOf("=");
  const owner = eq < 0 ? "" : value.slice(0, eq).trim();
  const logins = eq < 0
    ? []
    : value.slice(eq + 1).split(",").map((login) => login.trim());
  if (
    owner === "" || logins.length === 0 ||
    logins.some((login) => !/^[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?$/.test(login))
  ) {
    throw new Error(
      `Invalid --run-as ${
        JSON.stringify(value)
      }: expected CN=LOGIN[,LOGIN...] (CN "*" for every user), like 'alice=alice,www-data'`,
    );
  }
  return { owner, logins };
}

/** Parses `--uid-range FIRST-LAST`; throws an Error saying what is wrong. */
export function parseIdRange(value: string): IdRange {
  const match = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(value);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (
    match === null || !(first >= 1000) || !(last >= first) ||
    last > 0xfffffffe
  ) {
    throw new Error(
      `Invalid --uid-range ${
        JSON.stringify(value)
      }: expected FIRST-LAST with 1000 <= FIRST <= LAST <= 4294967294, like 2000000000-2000999999`,
    );
  }
  return { first, last };
}

/** Options of {@linkcode Identities}. */
export interface IdentityOptions {
  /** `--run-as` entries. */
  runAs?: readonly RunAsRule[];
  /** Range of the default identities. */
  uidRange?: IdRange;
  /** `<data-dir>/home`: where the default identities' homes go. */
  homeRoot: string;
}

/** Resolves and allocates identities; one per engine. */
export class Identities {
  #store: JobStore;
  #rules: readonly RunAsRule[];
  #range: IdRange;
  #homeRoot: string;
  /** Owners whose identity and home are known to be in place. */
  #ready = new Map<string, Identity>();

  constructor(store: JobStore, options: IdentityOptions) {
    this.#store = store;
    this.#rules = options.runAs ?? [];
    this.#range = options.uidRange ?? DEFAULT_UID_RANGE;
    this.#homeRoot = options.homeRoot;
    for (const rule of this.#rules) {
      for (const login of rule.logins) {
        if (lookupAccount(login) === undefined) {
          throw new Error(
            `--run-as ${rule.owner}=${login}: there is no account ${login} in /etc/passwd; create it or remove it from the policy`,
          );
        }
      }
    }
    Deno.mkdirSync(this.#homeRoot, { recursive: true, mode: 0o711 });
    Deno.chmodSync(this.#homeRoot, 0o711);
  }

  /**
   * The identity `owner`'s job runs as: the owner's own when `login` is
   * empty, else the login account, which the policy must allow. Throws
   * `permission_denied` naming the missing `--run-as` entry.
   */
  resolve(owner: string, login: string | undefined): Identity {
    if (login === undefined || login === "") return this.#own(owner);
    const allowed = this.#rules.some((rule) =>
      (rule.owner === owner || rule.owner === "*") &&
      rule.logins.includes(login)
    );
    if (!allowed) {
      throw new JobError(
        "permission_denied",
        `You may not run jobs as ${
          JSON.stringify(login)
        }: the server has no --run-as entry for ${owner} that names it (such as --run-as '${owner}=${login}'); ask its operator, or leave --user out to run as your own identity`,
      );
    }
    const account: Account | undefined = lookupAccount(login);
    if (account === undefined) {
      throw new JobError(
        "failed_precondition",
        `Account ${
          JSON.stringify(login)
        } no longer exists on the server: ask its operator`,
      );
    }
    return { ...account, cwd: usableCwd(account.home, account) };
  }

  #own(owner: string): Identity {
    const known = this.#ready.get(owner);
    if (known !== undefined) return known;
    const uid = this.#store.identityUid(owner) ?? this.#allocate(owner);
    const name = `telejob-${uid}`;
    const identity: Identity = {
      name,
      uid,
      gid: uid,
      groups: [],
      home: `${this.#homeRoot}/${name}`,
      cwd: "/",
    };
    this.#makeHome(identity);
    // Checked once per server process: a data dir below a directory others
    // cannot enter leaves the home unreachable, and jobs then start in /.
    identity.cwd = usableCwd(identity.home, identity);
    this.#ready.set(owner, identity);
    return identity;
  }

  #allocate(owner: string): number {
    const taken = usedIds();
    for (const uid of this.#store.identityUids()) taken.add(uid);
    for (let uid = this.#range.first; uid <= this.#range.last; uid++) {
      if (!taken.has(uid)) {
        this.#store.addIdentity(owner, uid);
        return uid;
      }
    }
    throw new JobError(
      "resource_exhausted",
      `Every uid of the server's --uid-range (${this.#range.first}-${this.#range.last}) is taken: ask its operator to widen it`,
    );
  }

  /** The home exists, belongs to the identity and only it may enter. */
  #makeHome(identity: Identity): void {
    try {
      Deno.mkdirSync(identity.home, { mode: 0o700 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    Deno.chownSync(identity.home, identity.uid, identity.gid);
    Deno.chmodSync(identity.home, 0o700);
  }
}
