/**
 * Where job cgroups go on cgroup v2 when no `--cgroup-parent` is given: the
 * server's own cgroup when it is delegated to it, otherwise `/telejob` at
 * the hierarchy's root. See {@linkcode choosePlacement}.
 * @module
 */
import {
  existsSync,
  JOB_PREFIX,
  joinCgroupPath,
  readOptionalSync,
  readPids,
  SERVER_LEAF,
} from "./fs.ts";
import { type LimitController, V1_HIERARCHY_OF } from "./types.ts";

/** The v2 controllers the driver enables for job cgroups. */
export const V2_CONTROLLERS: readonly LimitController[] = Object.keys(
  V1_HIERARCHY_OF,
) as LimitController[];

/** Splits a cgroup file's list of names. */
export function words(text: string | undefined): string[] {
  return (text ?? "").split(/\s+/).filter((w) => w !== "");
}

/** The cgroup below the hierarchy's root that holds job cgroups by default. */
export const DEFAULT_V2_PARENT = "/telejob";

/** Where job cgroups go, and why (logged at start-up). */
export interface Placement {
  /** The parent's cgroup path from the mount's root, e.g. `/telejob`. */
  path: string;
  /** `own` (a delegated cgroup), `root` (`/telejob`) or `flag` (`--cgroup-parent`). */
  kind: "own" | "root" | "flag";
  /** Why, in a sentence. */
  reason: string;
}

/**
 * Whether `dir` is the real root of the hierarchy: only the root lacks
 * `cgroup.type`. The root of a cgroup namespace looks like the root from
 * inside but is an ordinary cgroup, bound by the no-internal-processes rule.
 */
export function isRealRoot(dir: string): boolean {
  return !existsSync(`${dir}/cgroup.type`);
}

/**
 * The default placement (no `--cgroup-parent`). The server's own cgroup is
 * used only when it is delegated to us: not the real root, no process in it
 * but this one, no child cgroup but ours, and every controller the root
 * offers available to it (systemd `Delegate=yes`, or a container's cgroup
 * namespace with the server alone in it). Anything else is shared with
 * processes we do not own, whose cgroup v2 forbids enabling controllers for
 * ours (a login session scope, a container agent's cgroup, the root itself):
 * then jobs go below `/telejob` at the hierarchy's root (of the cgroup
 * namespace, inside one), as the Go prototype and Docker's cgroupfs driver
 * do.
 */
export async function choosePlacement(
  top: string,
  own: string | undefined,
  pid: number,
): Promise<Placement> {
  const fallback = (reason: string): Placement => ({
    path: DEFAULT_V2_PARENT,
    kind: "root",
    reason:
      `${reason}, so job cgroups go below ${DEFAULT_V2_PARENT} at the hierarchy's root (--cgroup-parent overrides)`,
  });
  if (own === undefined) {
    return fallback("the server's own cgroup is not visible below the mount");
  }
  // A server restarted inside the leaf it moved into before: its cgroup is
  // the leaf's parent.
  if (own.endsWith(`/${SERVER_LEAF}`)) {
    own = own.slice(0, -SERVER_LEAF.length - 1) || "/";
  }
  const ownDir = joinCgroupPath(top, own);
  if (own === "/" && isRealRoot(top)) {
    return fallback(
      "the server runs in the root cgroup, which the whole system shares",
    );
  }
  const others = (await readPids(`${ownDir}/cgroup.procs`)).filter((p) =>
    p !== pid
  );
  if (others.length > 0) {
    return fallback(
      `the server's own cgroup ${own} holds other processes (pids ${
        others.slice(0, 10).join(" ")
      }${others.length > 10 ? " …" : ""}) and is not delegated to it`,
    );
  }
  const foreign: string[] = [];
  for await (const entry of Deno.readDir(ownDir)) {
    if (
      entry.isDirectory && !entry.name.startsWith(JOB_PREFIX)
    ) foreign.push(entry.name);
  }
  if (foreign.length > 0) {
    return fallback(
      `the server's own cgroup ${own} has child cgroups that are not Telejob's (${
        foreign.slice(0, 5).join(" ")
      })`,
    );
  }
  const offered = V2_CONTROLLERS.filter((c) =>
    words(readOptionalSync(`${top}/cgroup.controllers`)).includes(c)
  );
  const available = words(readOptionalSync(`${ownDir}/cgroup.controllers`));
  const missing = offered.filter((c) => !available.includes(c));
  if (missing.length > 0) {
    return fallback(
      `the ${
        missing.join(", ")
      } controllers are not delegated to the server's own cgroup ${own} (its cgroup.controllers has ${
        available.join(" ") || "none"
      })`,
    );
  }
  return {
    path: own,
    kind: "own",
    reason:
      `the server's own cgroup ${own} is delegated to it (no other process in it, controllers ${
        offered.join(" ")
      } available), so job cgroups go below it and the server moves into ${SERVER_LEAF}`,
  };
}
