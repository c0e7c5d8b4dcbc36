/**
 * Where the time goes: a V8 CPU profile of this process over one phase
 * (through `node:inspector`), boiled down to the functions and files with
 * the most self time, and the process's CPU time per operation.
 * @module
 */
import { Session } from "node:inspector";
import process from "node:process";

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One line of a profile summary. */
export interface Hotspot {
  /** `function (file:line)` or a V8 pseudo-frame such as `(garbage collector)`. */
  name: string;
  /** Share of all samples, percent. */
  percent: number;
}

/** A profile boiled down. */
export interface ProfileSummary {
  /** Functions with the most self time. */
  functions: Hotspot[];
  /** Source files (or dependencies) with the most self time. */
  files: Hotspot[];
  /** Percent of samples in which the main thread was idle (waiting on ops). */
  idlePercent: number;
}

function shortUrl(url: string, repoRoot: string): string {
  if (url === "") return "(native)";
  let u = url.replace(/^file:\/\//, "");
  if (u.startsWith(repoRoot)) return u.slice(repoRoot.length + 1);
  const npm =
    /node_modules\/(?:\.deno\/)?(?:[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/
      .exec(u);
  if (npm) return `npm:${npm[1]}`;
  u = u.replace(/^ext:/, "deno:");
  return u;
}

/** Turns a V8 CPU profile into the top functions and files by self time. */
export function summarizeProfile(
  profile: Profile,
  repoRoot: string,
  top = 12,
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let idle = 0;
  const total = profile.samples.length;
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idle++;
      continue;
    }
    const where = shortUrl(url, repoRoot);
    const name = functionName.startsWith("(")
      ? functionName
      : `${functionName || "(anonymous)"} (${where}:${lineNumber + 1})`;
    fn.set(name, (fn.get(name) ?? 0) + 1);
    const fileKey = functionName.startsWith("(") ? functionName : where;
    file.set(fileKey, (file.get(fileKey) ?? 0) + 1);
  }
  const rank = (m: Map<string, number>): Hotspot[] =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map((
      [name, n],
    ) => ({ name, percent: (100 * n) / Math.max(1, total) }));
  return {
    functions: rank(fn),
    files: rank(file),
    idlePercent: (100 * idle) / Math.max(1, total),
  };
}

/**
 * Runs `phase` under the V8 sampling profiler of this process and returns
 * the summary and the process's CPU time (user and system, all threads).
 */
export async function profilePhase(
  phase: () => Promise<void>,
  repoRoot: string,
): Promise<{ summary: ProfileSummary; cpuMs: number; wallMs: number }> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}): Promise<T> =>
    new Promise((resolve, reject) =>
      session.post(
        method,
        params,
        (error: Error | null, result: unknown) =>
          error ? reject(error) : resolve(result as T),
      )
    );
  try {
    await post("Profiler.enable");
    await post("Profiler.setSamplingInterval", { interval: 200 });
    await post("Profiler.start");
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await phase();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const { profile } = await post<{ profile: Profile }>("Profiler.stop");
    return {
      summary: summarizeProfile(profile, repoRoot),
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs,
    };
  } finally {
    session.disconnect();
  }
}

/** CPU time (user + system, all threads) of `phase` in this process. */
export async function cpuTimeOf(
  phase: () => Promise<void>,
): Promise<{ cpuMs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await phase();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
}

/** Formats hotspots as `12.3% name` lines. */
export function formatHotspots(spots: readonly Hotspot[]): string {
  return spots.map((s) => `${s.percent.toFixed(1).padStart(5)}% ${s.name}`)
    .join("\n");
}
