/**
 * The kill loop both drivers share: v1 and v2 differ only in which files
 * they touch (`freezer.state` or `cgroup.freeze`, `cgroup.procs` or
 * `cgroup.events`, and v2's `cgroup.kill`), which a {@linkcode KillTarget}
 * supplies.
 * @module
 */
import { signalPid, sleep } from "./fs.ts";

/** A cgroup freezer: freezes and thaws a job's whole subtree. */
export interface Freezer {
  /** Asks the kernel to freeze the subtree. */
  freeze(): Promise<void>;
  /** Whether every task of the subtree has stopped. */
  frozen(): Promise<boolean>;
  /** Thaws the subtree. */
  thaw(): Promise<void>;
}

/** What {@linkcode killUntilEmpty} needs of one job cgroup. */
export interface KillTarget {
  /** The job cgroup's name, for the error message. */
  readonly name: string;
  /** Whether any process is left in the job's subtree. */
  populated(): boolean;
  /** The pids of every process in the job's subtree. */
  pids(): number[];
  /**
   * Kills the whole subtree in one write (v2's `cgroup.kill`, Linux 5.14+);
   * without it the loop freezes, SIGKILLs each pid and thaws.
   */
  killAll?: () => Promise<void>;
  /** The freezer, where the kernel has one for this cgroup. */
  freezer?: Freezer;
}

/**
 * Kills every process of `target` until none is left. Each round either
 * writes `killAll`, or freezes, SIGKILLs every pid and thaws: a frozen
 * process cannot fork, and its pid cannot be reused before it is killed,
 * so a fork bomb cannot escape. Without a freezer it repeats the kill until
 * the cgroup is empty, which also converges because each round kills every
 * process that could have forked. Throws once `timeoutMs` (default 10 s)
 * passes with processes left.
 */
export async function killUntilEmpty(
  target: KillTarget,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10000);
  const { freezer } = target;
  let delay = 1;
  for (;;) {
    if (!target.populated()) return;
    if (target.killAll) {
      await target.killAll();
    } else {
      if (freezer) await freezeFor(freezer, deadline);
      try {
        for (const pid of target.pids()) signalPid(pid, "SIGKILL");
      } finally {
        if (freezer) await freezer.thaw();
      }
    }
    if (!target.populated()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `Failed to kill every process of cgroup ${target.name}: pids ${
          target.pids().join(" ")
        } remain; check for processes stuck in uninterruptible sleep (ps -o stat)`,
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
}

/**
 * Freezes and waits until frozen, for at most a second: a task stuck in the
 * kernel may delay freezing, in which case we kill what we can and retry.
 */
async function freezeFor(freezer: Freezer, deadline: number): Promise<void> {
  await freezer.freeze();
  const until = Math.min(deadline, Date.now() + 1000);
  let delay = 1;
  while (!(await freezer.frozen()) && Date.now() < until) {
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
}
