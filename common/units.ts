/**
 * Values of the CLI's flags: sizes (`--memory`), durations (`--grace`) and
 * counts (`--pids`, `--tail`). Only the syntax is checked here; the server
 * decides what is allowed (its limits are the ceilings). The decimal syntax
 * of a CPU count ({@linkcode readDecimal}) is shared with the server's
 * `--cpu-limit`.
 * @module
 */
import { parseByteSize } from "./size.ts";

/** A flag value the CLI cannot read; a usage error (exit 2). */
export class ValueError extends Error {
  /** Creates the error; the message names the flag and what is allowed. */
  constructor(message: string) {
    super(message);
    this.name = "ValueError";
  }
}

/**
 * Parses a memory size in bytes: a number with a unit (`512M`, `1.5G`,
 * `64K`, `100B`; powers of 1024) or a plain number of KiB, as the server's
 * `--memory-limit` (and the seed) read it.
 */
export function parseSize(flag: string, value: string): number {
  const bytes = parseByteSize(value, { plainUnit: 1024 });
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new ValueError(
      `Invalid ${flag} ${
        JSON.stringify(value)
      }: use a size like 512M, 2G or 64K (powers of 1024), or a plain number of KiB`,
    );
  }
  return bytes;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration in milliseconds, in Go's style (`10s`, `1m30s`,
 * `500ms`, `1.5h`); a plain number means seconds, and `0` is zero.
 */
export function parseDuration(flag: string, value: string): number {
  const text = value.trim();
  const bad = () =>
    new ValueError(
      `Invalid ${flag} ${
        JSON.stringify(value)
      }: use a duration like 10s, 1m30s or 500ms (units ms, s, m, h), or 0`,
    );
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw bad();
  }
  const ms = Math.round(
    parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]], 0),
  );
  if (!Number.isSafeInteger(ms)) throw bad();
  return ms;
}

/** Parses a whole number of at least `min` (default 0). */
export function parseCount(
  flag: string,
  value: string,
  options: { min?: number } = {},
): number {
  const min = options.min ?? 0;
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ValueError(
      `Invalid ${flag} ${JSON.stringify(value)}: use a whole number${
        min > 0 ? ` of at least ${min}` : ""
      }`,
    );
  }
  return n;
}

/**
 * Reads a plain decimal number (`2`, `0.5`, `.5`, `1.`; no sign, no
 * exponent), the syntax of a CPU count everywhere; NaN for anything else,
 * so each caller words its own error.
 */
export function readDecimal(value: string): number {
  return /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(value) ? Number(value) : NaN;
}

/** Parses a CPU limit in cores: a decimal number greater than 0, like 0.5. */
export function parseCpu(flag: string, value: string): number {
  const cpu = readDecimal(value);
  if (!Number.isFinite(cpu) || cpu <= 0) {
    throw new ValueError(
      `Invalid ${flag} ${
        JSON.stringify(value)
      }: use a number of CPUs greater than 0, like 0.5 or 2`,
    );
  }
  return cpu;
}
