/**
 * Ramps up long-running children (plain spawns or engine jobs) while
 * watching this process's memory and file descriptors, and stops before the
 * open-files limit instead of running into it.
 * @module
 */
import { collectGarbage, countFds, readMemory } from "./proc.ts";
import { runConcurrent } from "./stats.ts";

/** One reading of the ramp. */
export interface RampSample {
  /** Children running when sampled. */
  running: number;
  /** VmRSS, bytes. */
  rss: number;
  /** V8 heap in use after a full GC (when exposed), bytes. */
  heapUsed: number;
  /** Open file descriptors. */
  fds: number;
  /** Milliseconds since the ramp began. */
  atMs: number;
}

/** Options of {@linkcode ramp}. */
export interface RampOptions {
  /** Children to reach. */
  target: number;
  /** Children started between two samples. */
  step: number;
  /** Starts in flight at once. */
  inFlight: number;
  /** Give up after this many milliseconds. */
  budgetMs: number;
  /** The open-files hard limit of this process. */
  fdLimit: number;
  /** Descriptors kept free for everything else the process must still do. */
  fdReserve: number;
}

/** What a ramp reached. */
export interface RampResult {
  /** Children running at the end. */
  reached: number;
  /** Why it stopped: the target, the fd headroom, a failure or the budget. */
  reason: string;
  /** Reading before the first start. */
  baseline: RampSample;
  /** Readings after each step, the last at {@linkcode RampResult.reached}. */
  samples: RampSample[];
  /** Milliseconds the ramp took. */
  elapsedMs: number;
}

/** Reads memory and fds of this process, after a GC when one is exposed. */
export async function sample(running: number, atMs: number): Promise<
  RampSample
> {
  collectGarbage();
  const memory = await readMemory();
  return {
    running,
    rss: memory.rss,
    heapUsed: Deno.memoryUsage().heapUsed,
    fds: await countFds(),
    atMs,
  };
}

/** The open-files hard limit of this process, from /proc/self/limits. */
export async function fdHardLimit(): Promise<number> {
  const limits = await Deno.readTextFile("/proc/self/limits");
  const match = /^Max open files\s+\S+\s+(\d+)/m.exec(limits);
  return match ? Number(match[1]) : 1024;
}

/**
 * Calls `start` until `target` children run, in steps, sampling memory and
 * fds after each step. Each step is sized from the fds one child has cost so
 * far, so the ramp ends just short of the limit rather than at an EMFILE.
 */
export async function ramp(
  start: () => Promise<void>,
  options: RampOptions,
): Promise<RampResult> {
  const began = performance.now();
  const since = () => performance.now() - began;
  const baseline = await sample(0, 0);
  const samples: RampSample[] = [];
  let running = 0;
  let reason = `reached the target of ${options.target}`;
  let last = baseline;
  while (running < options.target) {
    if (since() > options.budgetMs) {
      reason = `time budget of ${
        options.budgetMs / 1000
      } s used up at ${running} children`;
      break;
    }
    // Until the first step shows the real cost, assume 2 fds per child.
    const fdsEach = running > 0
      ? Math.max(1, (last.fds - baseline.fds) / running)
      : 2;
    const room = Math.floor(
      (options.fdLimit - options.fdReserve - last.fds) / (fdsEach * 1.05),
    );
    const batch = Math.min(options.step, options.target - running, room);
    if (batch < 1) {
      reason = `stopped short of the open-files limit: ${last.fds} fds open ` +
        `(${fdsEach.toFixed(2)} per child), hard limit ${options.fdLimit}, ` +
        `${options.fdReserve} kept in reserve`;
      break;
    }
    const run = await runConcurrent(batch, options.inFlight, start);
    running += run.results.length;
    last = await sample(running, since());
    samples.push(last);
    console.error(
      `    ${running} running: rss ${(last.rss / 2 ** 20).toFixed(0)} MiB, ` +
        `heap ${(last.heapUsed / 2 ** 20).toFixed(0)} MiB, ${last.fds} fds`,
    );
    if (run.errors.length > 0) {
      const error = run.errors[0];
      reason = `start failed after ${running} children: ${
        error instanceof Error ? error.message : String(error)
      }`;
      break;
    }
  }
  return {
    reached: running,
    reason,
    baseline,
    samples,
    elapsedMs: since(),
  };
}

/** Per-child cost of the last sample over the baseline. */
export function perChild(
  result: RampResult,
): { rss: number; heapUsed: number; fds: number } {
  const last = result.samples.at(-1) ?? result.baseline;
  const n = Math.max(1, result.reached);
  return {
    rss: (last.rss - result.baseline.rss) / n,
    heapUsed: (last.heapUsed - result.baseline.heapUsed) / n,
    fds: (last.fds - result.baseline.fds) / n,
  };
}
