/**
 * Where the CLI writes: job output and results to stdout, one line per
 * failure to stderr.
 * @module
 */
import { brokenPipe } from "./errors.ts";

/** Where the CLI writes, and how it reads its environment (for tests). */
export interface CliIo {
  /** Job output and results; default `Deno.stdout`. */
  stdout?: { write(p: Uint8Array): Promise<number> };
  /** Error lines and help on failure; default `Deno.stderr`. */
  stderr?: { write(p: Uint8Array): Promise<number> };
  /** Environment lookup; default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/** The CLI's stdout and stderr. */
export class Output {
  readonly #stdout: NonNullable<CliIo["stdout"]>;
  readonly #stderr: NonNullable<CliIo["stderr"]>;
  readonly #encoder = new TextEncoder();

  /** Writes to `io`'s streams, or the process's. */
  constructor(io: CliIo) {
    this.#stdout = io.stdout ?? Deno.stdout;
    this.#stderr = io.stderr ?? Deno.stderr;
  }

  /** Writes `data` to stdout; throws `brokenPipe()` once it closed. */
  async bytes(data: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < data.length;) {
        off += await this.#stdout.write(data.subarray(off));
      }
    } catch (err) {
      if (
        err instanceof Deno.errors.BrokenPipe ||
        (err as { code?: string })?.code === "EPIPE"
      ) {
        throw brokenPipe();
      }
      throw err;
    }
  }

  /** Writes `text` to stdout. */
  text(text: string): Promise<void> {
    return this.bytes(this.#encoder.encode(text));
  }

  /** Writes `value` as indented JSON and a newline to stdout. */
  json(value: unknown): Promise<void> {
    return this.text(JSON.stringify(value, null, 2) + "\n");
  }

  /** Writes `line` to stderr; never throws. */
  async error(line: string): Promise<void> {
    try {
      await this.#stderr.write(this.#encoder.encode(line.trimEnd() + "\n"));
    } catch {
      // Nowhere left to report to.
    }
  }
}
