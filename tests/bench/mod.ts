/**
 * `deno task bench`: measures the job engine and the gRPC API layer against
 * this machine's floor and prints a report (and JSON with `--json FILE`).
 *
 * Each section runs in a worker process of its own (`worker.ts`) and in its
 * own session, so that its memory readings start fresh and whatever it
 * leaves behind — processes, job cgroups, files — can be removed here even
 * when it crashes or is interrupted. A benchmark is never a test: nothing
 * here asserts a timing.
 *
 *     deno task bench [floor] [engine] [api] [--quick] [--json FILE]
 * @module
 */
import { testParentPath } from "../../cgroup/testing.ts";
import { fileURLToPath } from "node:url";
import {
  cgroupDirsBelowSelf,
  killProcessGroup,
  removeCgroupTree,
  removeDir,
} from "./cleanup.ts";
import { delay, loadAverage, machineInfo } from "./proc.ts";
import {
  type BenchReport,
  formatMarkdown,
  formatReport,
  type SectionResult,
} from "./report.ts";
import { parseBenchArgs, type Section, USAGE } from "./stats.ts";

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

interface RunState {
  /** The worker now running, if any. */
  worker?: Deno.ChildProcess;
  interrupted: boolean;
}

async function runWorker(
  section: Section,
  options: {
    workDir: string;
    cgroupParent: string;
    floors: Record<string, number>;
    quick: boolean;
    state: RunState;
  },
): Promise<SectionResult> {
  const out = `${options.workDir}/result.json`;
  const floorsFile = `${options.workDir}/floors.json`;
  await Deno.writeTextFile(floorsFile, JSON.stringify(options.floors));
  const args = [
    "run",
    "-A",
    "--v8-flags=--expose-gc",
    WORKER,
    section,
    "--out",
    out,
    "--work-dir",
    options.workDir,
    "--cgroup-parent",
    options.cgroupParent,
    "--floors",
    floorsFile,
  ];
  if (options.quick) args.push("--quick");
  const began = performance.now();
  // detached: the worker leads its own session and process group, so every
  // plain child it leaves behind can be killed with one signal.
  const worker = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    detached: true,
  }).spawn();
  options.state.worker = worker;
  const status = await worker.status;
  options.state.worker = undefined;
  killProcessGroup(worker.pid);
  const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
  try {
    const result = JSON.parse(await Deno.readTextFile(out)) as SectionResult;
    if (!status.success && !result.error) {
      result.error = `worker died (${how}); the numbers before are kept`;
    }
    return result;
  } catch {
    return {
      section,
      measurements: [],
      notes: [],
      error: `worker exited with ${how} without writing results`,
      seconds: (performance.now() - began) / 1000,
    };
  }
}

/** Removes whatever the run left: worker processes, job cgroups, files. */
async function backstop(
  state: RunState,
  root: string,
  cgroupParent: string,
): Promise<void> {
  const worker = state.worker;
  if (worker) {
    // Give the worker a chance to undo its own work (engine shutdown).
    try {
      Deno.kill(-worker.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
    const done = await Promise.race([
      worker.status.then(() => true),
      delay(60_000).then(() => false),
    ]);
    killProcessGroup(worker.pid);
    if (!done) await worker.status;
  }
  for (const dir of await cgroupDirsBelowSelf(cgroupParent)) {
    try {
      await removeCgroupTree(dir);
    } catch (error) {
      console.error(`Removing ${dir} failed: ${error}`);
    }
  }
  await removeDir(root);
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseBenchArgs(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const machine = await machineInfo();
  const root = await Deno.makeTempDir({ prefix: "telejob-bench-" });
  // At the root on cgroup v2, where our own cgroup may be shared.
  const cgroupParent = testParentPath(`tjbench-${Deno.pid}`);
  const state: RunState = { interrupted: false };
  const onSignal = () => {
    if (state.interrupted) return;
    state.interrupted = true;
    console.error("Interrupted: stopping the running section and cleaning up");
    if (state.worker) {
      try {
        Deno.kill(-state.worker.pid, "SIGTERM");
      } catch {
        // Already gone.
      }
    }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const report: BenchReport = { machine, quick: args.quick, sections: [] };
  const floors: Record<string, number> = {};
  try {
    for (const section of args.sections) {
      if (state.interrupted) break;
      console.error(`== ${section}`);
      const workDir = `${root}/${section}`;
      await Deno.mkdir(workDir);
      const result = await runWorker(section, {
        workDir,
        cgroupParent,
        floors,
        quick: args.quick,
        state,
      });
      report.sections.push(result);
      for (const m of result.measurements) floors[m.key] = m.value;
      await removeDir(workDir);
    }
  } finally {
    await backstop(state, root, cgroupParent);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  machine.loadAfter = loadAverage();
  console.log(formatReport(report));
  if (args.json) {
    await Deno.writeTextFile(args.json, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nWrote ${args.json}`);
  }
  if (args.markdown) {
    await Deno.writeTextFile(args.markdown, formatMarkdown(report));
    console.log(`Wrote ${args.markdown}`);
  }
  const failed = report.sections.some((s) => s.error);
  return state.interrupted ? 130 : failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
