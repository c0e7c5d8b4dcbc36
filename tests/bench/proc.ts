/**
 * What the benchmark reads from the kernel about a process and the machine:
 * resident memory, open file descriptors, load, free disk.
 * @module
 */
import type { MachineInfo } from "./report.ts";

/** Resident memory of a process, in bytes. */
export interface ProcMemory {
  /** Current resident set size (VmRSS). */
  rss: number;
  /** Peak resident set size since start or the last reset (VmHWM). */
  peakRss: number;
}

/** Reads VmRSS and VmHWM of `pid` (default: this process). */
export async function readMemory(pid: number | "self" = "self"): Promise<
  ProcMemory
> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { rss: kib("VmRSS"), peakRss: kib("VmHWM") };
}

/**
 * Resets the kernel's peak-RSS counter (VmHWM) of this process, so that a
 * later {@linkcode readMemory} shows the peak of one phase only.
 */
export async function resetPeakRss(): Promise<void> {
  await Deno.writeTextFile("/proc/self/clear_refs", "5");
}

/**
 * Open file descriptors of `pid`. For this process the directory listing's
 * own descriptor is not counted.
 */
export async function countFds(pid: number | "self" = "self"): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return pid === "self" ? count - 1 : count;
}

/** Runs V8's garbage collector when Deno was started with `--expose-gc`. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** Peaks seen by a {@linkcode MemorySampler}. */
export interface MemoryPeaks {
  /** Highest VmRSS sampled, bytes. */
  rss: number;
  /** Highest V8 heap in use sampled, bytes. */
  heapUsed: number;
  /** Number of samples taken. */
  samples: number;
}

/**
 * Samples this process's RSS and V8 heap on a timer, for peaks that a
 * single reading at the end would miss.
 */
export class MemorySampler {
  #timer: ReturnType<typeof setInterval>;
  #peaks: MemoryPeaks = { rss: 0, heapUsed: 0, samples: 0 };

  /** Starts sampling every `intervalMs` milliseconds. */
  constructor(intervalMs = 50) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    const usage = Deno.memoryUsage();
    this.#peaks.rss = Math.max(this.#peaks.rss, usage.rss);
    this.#peaks.heapUsed = Math.max(this.#peaks.heapUsed, usage.heapUsed);
    this.#peaks.samples++;
  }

  /** Stops sampling and returns the peaks. */
  stop(): MemoryPeaks {
    clearInterval(this.#timer);
    this.#sample();
    return { ...this.#peaks };
  }
}

/** Bytes available to an unprivileged writer on the file system of `path`. */
export async function freeDiskBytes(path: string): Promise<number> {
  const output = await new Deno.Command("df", {
    args: ["-B1", "--output=avail", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `Reading free disk space of ${path} failed: ${
        new TextDecoder().decode(output.stderr).trim()
      }`,
    );
  }
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  return Number(lines[lines.length - 1].trim());
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): number[] {
  return Deno.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** Describes this machine for the report. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const limits = await Deno.readTextFile("/proc/self/limits");
  const files = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  return {
    date: new Date().toISOString(),
    hostname: Deno.hostname(),
    kernel: Deno.osRelease(),
    cpus: navigator.hardwareConcurrency,
    cpuModel: model.trim(),
    memTotalBytes: Deno.systemMemoryInfo().total,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    loadBefore: loadAverage(),
    fdLimit: files ? `${files[1]} soft / ${files[2]} hard` : "unknown",
  };
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
