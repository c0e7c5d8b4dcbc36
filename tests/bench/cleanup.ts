/**
 * Clean-up of everything the benchmark creates, also when it fails: a stack
 * of undo steps for the worker, and a backstop for the parent that removes
 * what a crashed worker left (its process group, its cgroups, its files).
 * @module
 */

/** Undo steps run last-in first-out; one failing does not stop the rest. */
export class Cleanup {
  #steps: { label: string; fn: () => Promise<void> | void }[] = [];

  /** Registers `fn` to run at clean-up; returns a function that drops it. */
  defer(label: string, fn: () => Promise<void> | void): () => void {
    const step = { label, fn };
    this.#steps.push(step);
    return () => {
      const i = this.#steps.indexOf(step);
      if (i >= 0) this.#steps.splice(i, 1);
    };
  }

  /** Runs every registered step, newest first, and forgets them. */
  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      try {
        await step.fn();
      } catch (error) {
        console.error(`Clean-up step "${step.label}" failed: ${error}`);
      }
    }
  }
}

/** SIGKILLs every process in process group `pgid`; a gone group is fine. */
export function killProcessGroup(pgid: number): void {
  try {
    Deno.kill(-pgid, "SIGKILL");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function readPids(procsFile: string): Promise<number[]> {
  try {
    const text = await Deno.readTextFile(procsFile);
    return text.split("\n").filter((x) => x !== "").map(Number);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/**
 * Kills every process in the cgroup directory `dir` and all cgroups below
 * it, then removes them bottom-up. Used only on cgroups the benchmark made
 * itself (its own parent cgroup), never on the host's.
 */
export async function removeCgroupTree(dir: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.isDirectory) await removeCgroupTree(`${dir}/${entry.name}`);
  }
  for (let attempt = 0; attempt < 200; attempt++) {
    const pids = await readPids(`${dir}/cgroup.procs`);
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    try {
      await Deno.remove(dir);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      // EBUSY while the killed processes are still being reaped.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  throw new Error(`Removing cgroup ${dir} failed: it stayed busy for 5 s`);
}

/** Removes a directory tree, ignoring one that is already gone. */
export async function removeDir(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * The directories of cgroup `name` below this process's own cgroup in every
 * mounted hierarchy (v1 and v2), or below each mount's root when `name` is
 * absolute, whether or not they exist: where a driver given
 * `--cgroup-parent name` puts its job cgroups.
 */
export async function cgroupDirsBelowSelf(name: string): Promise<string[]> {
  const memberships = (await Deno.readTextFile("/proc/self/cgroup"))
    .split("\n").filter((l) => l !== "").map((line) => {
      const [id, controllers, ...path] = line.split(":");
      return { id, controllers, path: path.join(":") };
    });
  const dirs: string[] = [];
  for (
    const line of (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")
  ) {
    const [left, right] = line.split(" - ");
    if (!right) continue;
    const fields = left.split(" ");
    const [fstype, , superOptions = ""] = right.split(" ");
    const root = fields[3];
    const mountPoint = fields[4];
    if (name.startsWith("/") && (fstype === "cgroup2" || fstype === "cgroup")) {
      // An absolute parent (as on cgroup v2 hosts) is from the mount's root.
      dirs.push(`${mountPoint.replace(/\/$/, "")}${name}`);
      continue;
    }
    let own: string | undefined;
    if (fstype === "cgroup2") {
      own = memberships.find((m) => m.id === "0")?.path;
    } else if (fstype === "cgroup") {
      const options = superOptions.split(",");
      own = memberships.find((m) =>
        m.controllers !== "" &&
        m.controllers.split(",").every((c) => options.includes(c))
      )?.path;
    }
    if (own === undefined) continue;
    let relative: string;
    if (root === "/") relative = own;
    else if (own === root || own.startsWith(`${root}/`)) {
      relative = own.slice(root.length);
    } else continue;
    dirs.push(`${mountPoint}${relative.replace(/\/$/, "")}/${name}`);
  }
  return dirs;
}
