/**
 * Engine policy for a job's resource limits: the server's limits are the
 * defaults and the ceilings, and a job may only ask for tighter ones. The
 * checks of one value against this host come from the cgroup layer.
 * @module
 */
import {
  cpuProblem,
  deviceProblem,
  formatBytes,
  formatCpu,
  IO_KEYS,
  type IoLimit,
  type Limits,
  MAX_IO_RATE,
  memoryProblem,
  pidsProblem,
} from "../../cgroup/mod.ts";
import { JobError } from "./errors.ts";

function invalid(field: string, message: string): JobError {
  return new JobError("invalid_argument", message, field);
}

/**
 * The limits a job runs with: the server's limits (`ceiling`) are the
 * defaults, and a per-job value may only be tighter. Throws a
 * {@linkcode JobError} with code `invalid_argument` and the field at fault
 * (`limits.cpu`, `limits.memory_bytes`, `limits.pids`, `limits.io`).
 */
export function effectiveLimits(
  requested: Limits | undefined,
  ceiling: Limits,
): Limits {
  const result: Limits = {};
  const cpu = requested?.cpu;
  if (cpu !== undefined) {
    const problem = cpuProblem(cpu);
    if (problem) {
      throw invalid("limits.cpu", `Invalid CPU limit ${cpu}: ${problem}`);
    }
    if (ceiling.cpu !== undefined && cpu > ceiling.cpu) {
      throw invalid(
        "limits.cpu",
        `Invalid CPU limit ${cpu}: at most ${
          formatCpu(ceiling.cpu)
        }, the server's limit`,
      );
    }
    result.cpu = cpu;
  } else if (ceiling.cpu !== undefined) result.cpu = ceiling.cpu;

  const memory = requested?.memoryBytes;
  if (memory !== undefined) {
    const problem = memoryProblem(memory);
    if (problem) {
      throw invalid(
        "limits.memory_bytes",
        `Invalid memory limit ${memory} bytes: ${
          problem.replace(
            "a positive size in KiB or with a unit, like 2000, 512M or 2G",
            "a positive whole number of bytes",
          )
        }`,
      );
    }
    if (ceiling.memoryBytes !== undefined && memory > ceiling.memoryBytes) {
      throw invalid(
        "limits.memory_bytes",
        `Invalid memory limit ${memory} bytes: at most ${ceiling.memoryBytes} bytes (${
          formatBytes(ceiling.memoryBytes)
        }), the server's limit`,
      );
    }
    result.memoryBytes = memory;
  } else if (ceiling.memoryBytes !== undefined) {
    result.memoryBytes = ceiling.memoryBytes;
  }

  const pids = requested?.pids;
  if (pids !== undefined) {
    const problem = pidsProblem(pids);
    if (problem) {
      throw invalid("limits.pids", `Invalid pids limit ${pids}: ${problem}`);
    }
    if (ceiling.pids !== undefined && pids > ceiling.pids) {
      throw invalid(
        "limits.pids",
        `Invalid pids limit ${pids}: at most ${ceiling.pids}, the server's limit`,
      );
    }
    result.pids = pids;
  } else if (ceiling.pids !== undefined) result.pids = ceiling.pids;

  const io = mergeIo(requested?.io ?? [], ceiling.io ?? []);
  if (io.length > 0) result.io = io;
  return result;
}

function mergeIo(requested: IoLimit[], ceiling: IoLimit[]): IoLimit[] {
  const result: IoLimit[] = ceiling.map((l) => ({ ...l }));
  const seen = new Set<string>();
  for (const req of requested) {
    const device = `${req.major}:${req.minor}`;
    const fail = (problem: string): never => {
      throw invalid("limits.io", `Invalid I/O limit for ${device}: ${problem}`);
    };
    if (
      !Number.isSafeInteger(req.major) || !Number.isSafeInteger(req.minor) ||
      req.major < 0 || req.minor < 0
    ) {
      fail("major and minor must be whole numbers");
    }
    if (seen.has(device)) fail("the device is listed twice; give it once");
    seen.add(device);
    const keys = IO_KEYS.filter((k) => req[k] !== undefined);
    if (keys.length === 0) {
      fail("give at least one of rbps, wbps, riops, wiops");
    }
    let target = result.find((l) =>
      l.major === req.major && l.minor === req.minor
    );
    if (!target) {
      const problem = deviceProblem(req.major, req.minor);
      if (problem) fail(problem);
      target = { major: req.major, minor: req.minor };
      result.push(target);
    }
    for (const k of keys) {
      const value = req[k]!;
      if (!Number.isSafeInteger(value) || value < 1) {
        fail(`${k} must be a whole number from 1 to ${MAX_IO_RATE}`);
      }
      const max = target[k];
      if (max !== undefined && value > max) {
        fail(`${k} may be at most ${max}, the server's limit`);
      }
      target[k] = value;
    }
  }
  return result;
}
