/**
 * The one reader of byte sizes, shared by the server's `--memory-limit` and
 * `--output-limit` and the CLI's `--memory`, so that `512M` means the same
 * everywhere.
 * @module
 */

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Options of {@linkcode parseByteSize}. */
export interface ByteSizeOptions {
  /** Bytes per unit of a plain number: 1024 for the seed's KiB, 1 for bytes. */
  plainUnit: number;
}

/**
 * Parses a size with a unit (`512M`, `1.5G`, `64K`, `100B`; powers of 1024,
 * case-insensitive) or a plain number counted in `plainUnit` bytes. Returns
 * NaN for anything else, so each caller words its own error for its flag.
 */
export function parseByteSize(text: string, options: ByteSizeOptions): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return NaN;
  const unit = match[2] === ""
    ? options.plainUnit
    : UNIT_BYTES[match[2].toLowerCase()];
  return unit === undefined ? NaN : Math.round(Number(match[1]) * unit);
}
