/**
 * What every benchmark section is handed by the worker that runs it.
 * @module
 */
import type { Cleanup } from "./cleanup.ts";
import type { Plan } from "./plan.ts";
import type { Recorder } from "./report.ts";

/** A section's view of the run. */
export interface SectionContext {
  /** Counts and sizes for this run. */
  plan: Plan;
  /** Smoke run with small counts. */
  quick: boolean;
  /** A fresh directory of this run; removed at the end. */
  workDir: string;
  /** Repository root (for `main.ts` and `tests/testdata`). */
  repoRoot: string;
  /**
   * Name of the cgroup, below this process's own cgroup in each hierarchy,
   * under which every job cgroup of this run is created (`--cgroup-parent`).
   */
  cgroupParent: string;
  /** Where measurements and notes go. */
  rec: Recorder;
  /** Undo steps, run when the section ends or fails. */
  cleanup: Cleanup;
  /** Floors measured earlier in this run, by key (from the floor section). */
  floors: Record<string, number>;
}
