/**
 * Pure helpers of the benchmark: percentiles, bounded concurrency, argument
 * parsing and number formatting. Nothing here measures time by itself except
 * {@linkcode runConcurrent}, which only reports what it observed.
 * @module
 */

/** Summary of a set of latency samples, in the samples' unit. */
export interface Summary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The `p`-th percentile (0–100) of `samples`, interpolating linearly between
 * the closest ranks (Hyndman–Fan type 7, as numpy's default), so that small
 * sample sets still give a stable p99.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) {
    throw new RangeError("Cannot take a percentile of no samples");
  }
  if (!(p >= 0 && p <= 100)) {
    throw new RangeError(`Percentile must be within 0..100, got ${p}`);
  }
  const sorted = isSorted(samples)
    ? samples
    : [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const weight = rank - lower;
  return sorted[lower] + (sorted[upper] - sorted[lower]) * weight;
}

function isSorted(values: readonly number[]): boolean {
  for (let i = 1; i < values.length; i++) {
    if (values[i - 1] > values[i]) return false;
  }
  return true;
}

/** Count, min, p50, p90, p99, max and mean of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) {
    throw new RangeError("Cannot summarize no samples");
  }
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    min: sorted[0],
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
    mean: sum / sorted.length,
  };
}

/** What {@linkcode runConcurrent} observed. */
export interface ConcurrentRun<T> {
  /** Results of the calls that succeeded, in completion order. */
  results: T[];
  /** Calls that failed; after the first failure no new call is started. */
  errors: unknown[];
  /** Most calls that were ever in flight at once. */
  maxInFlight: number;
  /** Milliseconds from the first call to the last settlement. */
  elapsedMs: number;
}

/** Options of {@linkcode runConcurrent}. */
export interface RunConcurrentOptions {
  /** Keep starting calls after one failed (default false: stop starting). */
  continueOnError?: boolean;
  /** Clock in milliseconds (default `performance.now`); replaceable in tests. */
  now?: () => number;
}

/**
 * Calls `fn(0)`, `fn(1)`, … `fn(total - 1)` with at most `inFlight` calls
 * pending at once, the way a server sees `inFlight` clients that each send
 * their next request as soon as the previous one is answered.
 */
export async function runConcurrent<T>(
  total: number,
  inFlight: number,
  fn: (index: number) => Promise<T>,
  options: RunConcurrentOptions = {},
): Promise<ConcurrentRun<T>> {
  if (!Number.isInteger(total) || total < 0) {
    throw new RangeError(`total must be a non-negative integer, got ${total}`);
  }
  if (!Number.isInteger(inFlight) || inFlight < 1) {
    throw new RangeError(
      `inFlight must be a positive integer, got ${inFlight}`,
    );
  }
  const now = options.now ?? (() => performance.now());
  const results: T[] = [];
  const errors: unknown[] = [];
  let next = 0;
  let running = 0;
  let maxInFlight = 0;
  const started = now();
  const lane = async (): Promise<void> => {
    while (next < total && (errors.length === 0 || options.continueOnError)) {
      const index = next++;
      running++;
      maxInFlight = Math.max(maxInFlight, running);
      try {
        results.push(await fn(index));
      } catch (error) {
        errors.push(error);
      } finally {
        running--;
      }
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < Math.min(inFlight, total); i++) lanes.push(lane());
  await Promise.all(lanes);
  return { results, errors, maxInFlight, elapsedMs: now() - started };
}

/** Options of {@linkcode runFor}. */
export interface RunForOptions {
  /** Clock in milliseconds (default `performance.now`); replaceable in tests. */
  now?: () => number;
}

/**
 * Keeps `inFlight` calls of `fn` pending until `durationMs` has passed, then
 * waits for the last ones; returns how many completed and how long it took.
 * A failing call ends the run and is thrown.
 */
export async function runFor(
  durationMs: number,
  inFlight: number,
  fn: () => Promise<unknown>,
  options: RunForOptions = {},
): Promise<{ count: number; elapsedMs: number }> {
  if (!Number.isInteger(inFlight) || inFlight < 1) {
    throw new RangeError(
      `inFlight must be a positive integer, got ${inFlight}`,
    );
  }
  const now = options.now ?? (() => performance.now());
  const started = now();
  let count = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && now() - started < durationMs) {
      try {
        await fn();
      } catch (error) {
        failed = true;
        throw error;
      }
      count++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { count, elapsedMs: now() - started };
}

/** Benchmark sections that can be run on their own. */
export const SECTIONS = ["floor", "engine", "api", "list", "hostile"] as const;
/** One benchmark section. */
export type Section = typeof SECTIONS[number];

/** Parsed command line of `deno task bench`. */
export interface BenchArgs {
  /** Sections to run, in the canonical order. */
  sections: Section[];
  /** Smaller counts for a smoke run. */
  quick: boolean;
  /** Where to write the results as JSON, if anywhere. */
  json?: string;
  /** Where to write the report as Markdown tables, if anywhere. */
  markdown?: string;
  /** Print usage and exit. */
  help: boolean;
}

/** Usage text of `deno task bench`. */
export const USAGE =
  `Usage: deno task bench [floor] [engine] [api] [list] [hostile] [--quick]
                       [--json FILE] [--markdown FILE]

Measures the job engine and the gRPC API against this machine's floor.
With no section named, all of them run in order.

  floor        plain Deno.Command spawns, file writes and reads
  engine       the in-process JobEngine with the real cgroup driver
  api          a real telejob-server over mTLS, the telejob CLI
  list         List with 10,000 stored jobs: first page, full walk, CLI
  hostile      stalled readers' memory, new clients among idle sockets
  --quick      small counts: a smoke run of a minute or two
  --json FILE  also write every number as JSON to FILE
  --markdown FILE  also write the report as Markdown tables to FILE
  --help       this text`;

/**
 * Parses `deno task bench` arguments. Throws a `TypeError` naming the bad
 * argument and what is allowed.
 */
export function parseBenchArgs(args: readonly string[]): BenchArgs {
  const chosen = new Set<Section>();
  let quick = false;
  let json: string | undefined;
  let markdown: string | undefined;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--quick") {
      quick = true;
    } else if (arg === "--help" || arg === "-h") {
      help = true;
    } else if (arg === "--json" || arg.startsWith("--json=")) {
      const value = arg === "--json" ? args[++i] : arg.slice("--json=".length);
      if (!value) {
        throw new TypeError("--json needs a file name, e.g. --json out.json");
      }
      json = value;
    } else if (arg === "--markdown" || arg.startsWith("--markdown=")) {
      const value = arg === "--markdown"
        ? args[++i]
        : arg.slice("--markdown=".length);
      if (!value) {
        throw new TypeError(
          "--markdown needs a file name, e.g. --markdown report.md",
        );
      }
      markdown = value;
    } else if ((SECTIONS as readonly string[]).includes(arg)) {
      chosen.add(arg as Section);
    } else {
      throw new TypeError(
        `Unknown argument ${JSON.stringify(arg)}: expected one of ${
          SECTIONS.join(", ")
        }, --quick, --json FILE, --markdown FILE or --help`,
      );
    }
  }
  const sections = chosen.size === 0
    ? [...SECTIONS]
    : SECTIONS.filter((s) => chosen.has(s));
  return { sections, quick, json, markdown, help };
}

/** A target from the issues: the measured value must be `op` `value`. */
export interface Target {
  op: "<=" | ">=";
  value: number;
}

/** Whether `value` meets `target`, and by what factor it misses. */
export function verdict(value: number, target: Target): string {
  const met = target.op === "<="
    ? value <= target.value
    : value >= target.value;
  if (met) return "met";
  const factor = target.op === "<="
    ? value / target.value
    : target.value / value;
  return `missed ${formatNumber(factor)}x`;
}

/**
 * Formats a number with three significant digits (whole numbers from 1,000
 * up, with thousands separators) so report columns stay readable.
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs === 0) return "0";
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

/** Bytes as a short human-readable size in binary units (KiB, MiB, GiB). */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${formatNumber(value)} ${units[unit]}`;
}

/** Parses a size such as `10G`, `512M`, `64K` or `4096` (binary units). */
export function parseSize(text: string): number {
  const match = /^(\d+)([KMGT]?)$/i.exec(text.trim());
  if (!match) {
    throw new TypeError(
      `Invalid size ${
        JSON.stringify(text)
      }: expected digits with an optional K, M, G or T`,
    );
  }
  const power = " KMGT".indexOf(match[2].toUpperCase() || " ");
  return Number(match[1]) * 1024 ** power;
}

/** Megabytes (10^6 bytes) per second for `bytes` moved in `ms`. */
export function mbPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? bytes / 1e6 / (ms / 1000) : 0;
}

/** Pads every column of `rows` to its widest cell (first row is a header). */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]))
      .join("  ").trimEnd()
  ).join("\n");
}
