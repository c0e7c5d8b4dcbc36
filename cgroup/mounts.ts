/**
 * Where the cgroup hierarchies are mounted and which cgroup this process is
 * in, parsed from `/proc/self/mountinfo` and `/proc/self/cgroup`.
 * @module
 */

/** One mounted cgroup hierarchy. */
export interface CgroupMount {
  /** 1 for a legacy `cgroup` mount, 2 for `cgroup2`. */
  version: 1 | 2;
  /** Where it is mounted, e.g. `/sys/fs/cgroup/memory`. */
  mountPoint: string;
  /** The cgroup path shown at the mount point (`/` unless bind-mounted). */
  root: string;
  /** v1 controllers of the hierarchy (e.g. `cpu`, `cpuacct`); empty on v2. */
  controllers: string[];
  /** v1 named hierarchy (`name=systemd`), if any. */
  name?: string;
}

/** One line of `/proc/self/cgroup`. */
export interface CgroupMembership {
  /** Hierarchy id; 0 for the unified hierarchy. */
  id: number;
  /** Controllers of the hierarchy (v1), empty for the unified one. */
  controllers: string[];
  /** Named hierarchy (`name=systemd`), if any. */
  name?: string;
  /** The cgroup path, relative to the hierarchy's root. */
  path: string;
}

function unescape(field: string): string {
  return field.replace(
    /\\([0-7]{3})/g,
    (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
  );
}

/** Parses `/proc/self/mountinfo` text into the cgroup mounts it lists. */
export function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const dash = line.indexOf(" - ");
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(" ");
    const right = line.slice(dash + 3).split(" ");
    const fsType = right[0];
    if (fsType !== "cgroup" && fsType !== "cgroup2") continue;
    const root = unescape(left[3] ?? "/");
    const mountPoint = unescape(left[4] ?? "");
    if (fsType === "cgroup2") {
      mounts.push({ version: 2, mountPoint, root, controllers: [] });
      continue;
    }
    const options = (right[2] ?? "").split(",");
    const name = options.find((o) => o.startsWith("name="))?.slice(5);
    const controllers = options.filter((o) => KNOWN_V1.has(o));
    mounts.push({ version: 1, mountPoint, root, controllers, name });
  }
  return mounts;
}

const KNOWN_V1 = new Set([
  "cpu",
  "cpuacct",
  "cpuset",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "net_prio",
  "blkio",
  "perf_event",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
]);

/** Parses `/proc/self/cgroup` text. */
export function parseProcCgroup(text: string): CgroupMembership[] {
  const result: CgroupMembership[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const id = Number(line.slice(0, first));
    const list = line.slice(first + 1, second);
    const parts = list === "" ? [] : list.split(",");
    const name = parts.find((p) => p.startsWith("name="))?.slice(5);
    const controllers = parts.filter((p) => !p.startsWith("name="));
    result.push({ id, controllers, name, path: line.slice(second + 1) });
  }
  return result;
}

/**
 * The path below the mount point for cgroup `path`, accounting for a mount
 * whose root is not the hierarchy's root (a bind mount in a container).
 * Returns `undefined` when the cgroup is not visible through this mount.
 */
export function pathBelowMount(
  mount: CgroupMount,
  path: string,
): string | undefined {
  const root = mount.root.replace(/\/$/, "");
  if (root === "") return path;
  if (path === root) return "/";
  if (path.startsWith(root + "/")) return path.slice(root.length);
  return undefined;
}

/** Reads this process's cgroup mounts and memberships. */
export async function readSelf(): Promise<{
  mounts: CgroupMount[];
  memberships: CgroupMembership[];
}> {
  const [mountinfo, cgroup] = await Promise.all([
    Deno.readTextFile("/proc/self/mountinfo"),
    Deno.readTextFile("/proc/self/cgroup"),
  ]);
  return {
    mounts: parseMountinfo(mountinfo),
    memberships: parseProcCgroup(cgroup),
  };
}

/** This process's cgroup layout: mounts and memberships. */
export interface CgroupLayout {
  /** Parsed `/proc/self/mountinfo` cgroup mounts. */
  mounts: CgroupMount[];
  /** Parsed `/proc/self/cgroup` lines. */
  memberships: CgroupMembership[];
}

/**
 * The layout a driver was given, with what it was not given read from
 * `/proc/self` (tests pass both; the server passes what it detected).
 */
export async function selfLayout(
  given: Partial<CgroupLayout>,
): Promise<CgroupLayout> {
  let { mounts, memberships } = given;
  if (!mounts || !memberships) {
    const self = await readSelf();
    mounts ??= self.mounts;
    memberships ??= self.memberships;
  }
  return { mounts, memberships };
}
