/**
 * Parsing and validation of resource limits: the server's flags (compatible
 * with the seed: `--cpu-limit 0.2`, `--memory-limit 2000` in KiB or with a
 * unit, `--io-limit "MAJ:MIN rbps=N wbps=N riops=N wiops=N"`, plus
 * `--pids-limit`), and the checks of one value against this host that the
 * engine's per-job policy (`server/jobs/limits.ts`) reuses.
 * @module
 */
import { availableParallelism } from "node:os";
import { parseByteSize } from "../common/size.ts";
import { readDecimal } from "../common/units.ts";
import type { IoLimit, Limits } from "./types.ts";

/** Smallest CPU limit: the kernel's minimum quota is 1 ms per 100 ms. */
export const MIN_CPU = 0.01;
/** Smallest memory limit: 16 pages; anything less cannot run a process. */
export const MIN_MEMORY_BYTES = 64 * 1024;
/** Largest pids limit: the kernel's `pid_max` ceiling. */
export const MAX_PIDS = 4194304;
/** Largest byte rate or IO rate we accept (the kernel takes a u64). */
export const MAX_IO_RATE = Number.MAX_SAFE_INTEGER;

/** The raw flag values, as the command line gave them. */
export interface LimitFlags {
  /** `--cpu-limit`: cores, e.g. `0.2`. */
  cpuLimit?: string;
  /** `--memory-limit`: KiB, or with a unit (`512K`, `512M`, `2G`). */
  memoryLimit?: string;
  /** `--io-limit`, repeatable: `MAJ:MIN rbps=N wbps=N riops=N wiops=N`. */
  ioLimit?: string[];
  /** `--pids-limit`: a whole number of processes and threads. */
  pidsLimit?: string;
}

/** The number of CPUs of this host (the largest sensible CPU limit). */
export function hostCpus(): number {
  return availableParallelism();
}

let memTotal: number | undefined;

/**
 * Physical memory of this host in bytes, rounded up to a whole GiB (MemTotal
 * leaves out what the kernel reserved at boot, so a 2 GiB machine reports a
 * little less and `2G` should still be accepted). A larger limit could never
 * bind, since swap is disabled for limited jobs.
 */
export function hostMemoryBytes(): number {
  if (memTotal === undefined) {
    try {
      const text = Deno.readTextFileSync("/proc/meminfo");
      const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(text)?.[1]);
      memTotal = Number.isFinite(kib) && kib > 0
        ? Math.ceil(kib / 1024 ** 2) * 1024 ** 3
        : Number.MAX_SAFE_INTEGER;
    } catch {
      memTotal = Number.MAX_SAFE_INTEGER;
    }
  }
  return memTotal;
}

/** Formats bytes in the largest whole unit (`2G`, `512M`, `64K`). */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["G", 1024 ** 3], ["M", 1024 ** 2]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes % 1024 === 0 ? `${bytes / 1024}K` : `${bytes} bytes`;
}

/** Formats cores without float noise (`0.2`, not `0.20000000000000001`). */
export function formatCpu(cpu: number): string {
  return String(Number(cpu.toFixed(4)));
}

/** Checks a CPU limit in cores; returns a reason when it is not allowed. */
export function cpuProblem(cpu: number): string | undefined {
  const max = hostCpus();
  if (!Number.isFinite(cpu) || cpu <= 0) {
    return `expected a number of CPUs greater than 0, like 0.5`;
  }
  if (cpu < MIN_CPU) return `the smallest CPU limit is ${MIN_CPU}`;
  if (cpu > max) {
    return `at most ${max}, the number of CPUs on this host`;
  }
  return undefined;
}

/** Checks a memory limit in bytes; returns a reason when it is not allowed. */
export function memoryProblem(bytes: number): string | undefined {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    return "expected a positive size in KiB or with a unit, like 2000, 512M or 2G";
  }
  if (bytes < MIN_MEMORY_BYTES) {
    return `at least ${formatBytes(MIN_MEMORY_BYTES)}`;
  }
  if (bytes > hostMemoryBytes()) {
    return `at most ${
      formatBytes(hostMemoryBytes())
    }, the physical memory of this host`;
  }
  return undefined;
}

/** Checks a pids limit; returns a reason when it is not allowed. */
export function pidsProblem(pids: number): string | undefined {
  if (!Number.isSafeInteger(pids) || pids < 1) {
    return "expected a whole number of processes of at least 1, like 100";
  }
  if (pids > MAX_PIDS) return `at most ${MAX_PIDS}`;
  return undefined;
}

/** Parses `--cpu-limit`: cores as a decimal number. */
export function parseCpu(value: string): number {
  const cpu = readDecimal(value);
  const problem = cpuProblem(cpu);
  if (problem) {
    throw new Error(`Invalid --cpu-limit ${JSON.stringify(value)}: ${problem}`);
  }
  return cpu;
}

/** Parses `--memory-limit`: KiB by default, or with a unit (K, M, G, T). */
export function parseMemory(value: string): number {
  const bytes = parseByteSize(value, { plainUnit: 1024 });
  const unknownUnit = Number.isNaN(bytes) &&
    /^\s*\d+(?:\.\d+)?\s*[a-zA-Z]+\s*$/.test(value);
  const problem = unknownUnit
    ? "unknown unit; use K, M, G or T (powers of 1024), or no unit for KiB"
    : memoryProblem(bytes);
  if (problem) {
    throw new Error(
      `Invalid --memory-limit ${JSON.stringify(value)}: ${problem}`,
    );
  }
  return bytes;
}

/** Parses `--pids-limit`: a whole number. */
export function parsePids(value: string): number {
  const pids = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  const problem = pidsProblem(pids);
  if (problem) {
    throw new Error(
      `Invalid --pids-limit ${JSON.stringify(value)}: ${problem}`,
    );
  }
  return pids;
}

/** Splits a device number `rdev` (from stat) into major and minor. */
export function splitRdev(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/**
 * Checks that MAJ:MIN is a whole block device on this host (the kernel
 * throttles whole disks, not partitions); returns a reason otherwise.
 */
export function deviceProblem(
  major: number,
  minor: number,
): string | undefined {
  const sys = `/sys/dev/block/${major}:${minor}`;
  try {
    Deno.statSync(sys);
  } catch {
    return `no block device ${major}:${minor} on this host; see lsblk for MAJ:MIN`;
  }
  try {
    Deno.statSync(`${sys}/partition`);
    return `${major}:${minor} is a partition; limit the whole disk it belongs to`;
  } catch {
    return undefined;
  }
}

/** The settings of one device's I/O limit, as `io.max` names them. */
export const IO_KEYS = ["rbps", "wbps", "riops", "wiops"] as const;

const RATE_UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
};

/**
 * Parses one `--io-limit`: `MAJ:MIN` or a block device path, then one or more
 * of `rbps=N wbps=N riops=N wiops=N` (byte rates may carry K, M or G).
 */
export async function parseIo(value: string): Promise<IoLimit> {
  const fail = (problem: string): never => {
    throw new Error(`Invalid --io-limit ${JSON.stringify(value)}: ${problem}`);
  };
  const [device, ...settings] = value.trim().split(/\s+/);
  if (!device) {
    fail(
      'expected "MAJ:MIN rbps=N wbps=N riops=N wiops=N", like "7:0 wbps=1048576"',
    );
  }
  let major: number;
  let minor: number;
  const numbers = /^(\d+):(\d+)$/.exec(device);
  if (numbers) {
    major = Number(numbers[1]);
    minor = Number(numbers[2]);
  } else if (device.startsWith("/")) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(device);
    } catch (error) {
      return fail(
        `cannot stat ${device} (${
          error instanceof Error ? error.message : error
        }); give an existing block device or MAJ:MIN`,
      );
    }
    if (!info.isBlockDevice || info.rdev === null) {
      return fail(`${device} is not a block device; give a disk like /dev/sda`);
    }
    ({ major, minor } = splitRdev(info.rdev));
  } else {
    return fail(
      `the device must be MAJ:MIN (like 8:0) or a block device path (like /dev/sda)`,
    );
  }
  const limit: IoLimit = { major, minor };
  if (settings.length === 0) {
    fail("give at least one of rbps=N, wbps=N, riops=N, wiops=N");
  }
  for (const setting of settings) {
    const match = /^(rbps|wbps|riops|wiops)=(\d+)([kKmMgG]?)$/.exec(setting);
    if (!match) {
      fail(
        `${
          JSON.stringify(setting)
        } is not one of rbps=N, wbps=N, riops=N, wiops=N with N a whole number`,
      );
    }
    const [, key, digits, unit] = match!;
    const k = key as typeof IO_KEYS[number];
    if (unit && (k === "riops" || k === "wiops")) {
      fail(`${k} counts operations; give a plain number without a unit`);
    }
    if (limit[k] !== undefined) fail(`${k} is given twice`);
    const rate = Number(digits) * RATE_UNITS[unit.toLowerCase()];
    if (!Number.isSafeInteger(rate) || rate < 1) {
      fail(`${k} must be a whole number from 1 to ${MAX_IO_RATE}`);
    }
    limit[k] = rate;
  }
  const problem = deviceProblem(major, minor);
  if (problem) fail(problem);
  return limit;
}

/**
 * Parses and validates the server's limit flags. Throws an Error naming the
 * flag and what is allowed; an absent flag means no limit.
 */
export async function parseLimitFlags(flags: LimitFlags): Promise<Limits> {
  const limits: Limits = {};
  if (flags.cpuLimit !== undefined) limits.cpu = parseCpu(flags.cpuLimit);
  if (flags.memoryLimit !== undefined) {
    limits.memoryBytes = parseMemory(flags.memoryLimit);
  }
  if (flags.pidsLimit !== undefined) limits.pids = parsePids(flags.pidsLimit);
  if (flags.ioLimit !== undefined && flags.ioLimit.length > 0) {
    const io: IoLimit[] = [];
    for (const value of flags.ioLimit) {
      const limit = await parseIo(value);
      if (io.some((l) => l.major === limit.major && l.minor === limit.minor)) {
        throw new Error(
          `Invalid --io-limit ${
            JSON.stringify(value)
          }: device ${limit.major}:${limit.minor} is limited twice; give one --io-limit per device`,
        );
      }
      io.push(limit);
    }
    limits.io = io;
  }
  return limits;
}
