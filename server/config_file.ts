/**
 * `telejob-server --config FILE`: a TOML file that holds any of the
 * command's flags, one key per flag under the flag's own name:
 *
 * ```toml
 * address = "0.0.0.0:8443"
 * server-cert = "/etc/telejob/pki/server.crt"
 * cpu-limit = 0.5
 * admin = ["alice", "bob"]   # a repeatable flag takes a list
 * ```
 *
 * It works from the flag spec alone, so every flag a {@linkcode CommandSpec}
 * gains is a key at once. Precedence: command line > file > environment >
 * default; a repeatable flag given on the command line replaces the file's
 * list. An unknown key or a value of the wrong type is refused with the
 * file's line; a value the flag's own check refuses is reported with it too
 * ({@linkcode ConfigSource.explain}).
 * @module
 */
import { parse, TomlError } from "smol-toml";
import {
  type CommandSpec,
  parseCommand,
  type ParsedArgs,
  type ParsedValues,
  type ParseOptions,
  UsageError,
} from "../common/args.ts";

/** The flag that names the file; it cannot be set inside one. */
export const CONFIG_FLAG = "config";

/**
 * Returns the line (1-based) of each top-level key or table header in a
 * TOML text, skipping what is inside strings, arrays and inline tables.
 */
export function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let depth = 0;
  let multiline: string | undefined;
  const rows = text.split("\n");
  for (let row = 0; row < rows.length; row++) {
    const line = rows[row];
    let i = 0;
    if (multiline) {
      const end = line.indexOf(multiline);
      if (end < 0) continue;
      i = end + 3;
      multiline = undefined;
    } else if (depth === 0) {
      const key = /^\s*(?:\[\[?\s*)?(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))/
        .exec(line);
      const name = key?.[1] ?? key?.[2] ?? key?.[3];
      if (name !== undefined && !lines.has(name)) lines.set(name, row + 1);
    }
    for (; i < line.length; i++) {
      const c = line[i];
      if (c === "#") break;
      if (c === '"' || c === "'") {
        const triple = line.startsWith(c.repeat(3), i) ? c.repeat(3) : "";
        if (triple) {
          const end = line.indexOf(triple, i + 3);
          if (end < 0) {
            multiline = triple;
            break;
          }
          i = end + 2;
          continue;
        }
        for (i++; i < line.length && line[i] !== c; i++) {
          if (c === '"' && line[i] === "\\") i++;
        }
      } else if (c === "[" || c === "{") depth++;
      else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
    }
  }
  return lines;
}

/** A loaded config file: its flag values and where each key is. */
export class ConfigSource {
  /** Creates a source; use {@linkcode loadConfigFile}. */
  constructor(
    /** The file's path, as given. */
    readonly path: string,
    /** Flag values by flag name. */
    readonly values: ParsedValues,
    /** The line of each key. */
    readonly lines: Map<string, number>,
  ) {}

  /** `FILE, line N` for `key`. */
  where(key: string): string {
    const line = this.lines.get(key);
    return line === undefined ? this.path : `${this.path}, line ${line}`;
  }

  /**
   * Adds the file and line to a flag check's `Invalid --NAME ...` error
   * when NAME's value came from this file; other errors pass unchanged.
   */
  explain(error: unknown, parsed: ParsedArgs): unknown {
    if (!(error instanceof UsageError)) return error;
    const name = /^Invalid --([a-z0-9-]+)/.exec(error.message)?.[1];
    if (
      name === undefined || !(name in this.values) ||
      parsed.explicit[name] !== this.values[name]
    ) {
      return error;
    }
    return new UsageError(`${this.where(name)}: ${error.message}`);
  }
}

function describeType(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date";
  if (value !== null && typeof value === "object") return "a table";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function scalar(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * Reads and checks a TOML config file against `spec`: every key must be
 * one of its flags, with a value of the flag's kind (a string or number for
 * a flag taking a value, a list of them for a repeatable one, true or false
 * for a switch).
 *
 * @throws {UsageError} naming the file, the line and the key at fault.
 */
export async function loadConfigFile(
  path: string,
  spec: CommandSpec,
): Promise<ConfigSource> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new UsageError(
      `Cannot read the config file ${path}: ${why}; check --${CONFIG_FLAG}`,
    );
  }
  let table: Record<string, unknown>;
  try {
    table = parse(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const why = error.message.split("\n")[0].replace(
      /^Invalid TOML document: /,
      "",
    );
    throw new UsageError(
      `${path}, line ${error.line}: not valid TOML: ${why}`,
    );
  }

  const source = new ConfigSource(path, {}, keyLines(text));
  for (const [key, value] of Object.entries(table)) {
    const flag = key === CONFIG_FLAG
      ? undefined
      : spec.flags.find((f) => f.name === key);
    if (!flag) {
      const dashed = key.replaceAll("_", "-");
      const hint = dashed !== key && spec.flags.some((f) => f.name === dashed)
        ? `did you mean ${dashed}?`
        : key === CONFIG_FLAG
        ? "a config file cannot name another"
        : `the keys are ${spec.name}'s flags without the dashes, such as ${
          spec.flags.find((f) => f.name !== CONFIG_FLAG)?.name
        }; run "${spec.name} --help"`;
      throw new UsageError(
        `${source.where(key)}: unknown key ${JSON.stringify(key)}: ${hint}`,
      );
    }
    const bad = (expected: string): never => {
      throw new UsageError(
        `${
          source.where(key)
        }: bad value for ${key}: expected ${expected}, got ${
          describeType(value)
        }`,
      );
    };
    if (flag.type === "boolean") {
      if (typeof value !== "boolean") bad("true or false");
      source.values[key] = value as boolean;
    } else if (flag.multiple) {
      const items = Array.isArray(value) ? value.map(scalar) : undefined;
      if (!items || items.some((v) => v === undefined)) {
        bad(`a list of strings, like ${key} = ["${flag.value ?? "VALUE"}"]`);
      }
      source.values[key] = items as string[];
    } else {
      const text = scalar(value);
      if (text === undefined) bad(`a string, like ${key} = "${flag.value}"`);
      source.values[key] = text!;
    }
  }
  return source;
}

/**
 * Parses `args` against `spec` with the config file named by `--config`
 * (when the spec has that flag and it is given) as a layer below the
 * command line. Returns the parse and the file, if any.
 *
 * @throws {UsageError} for a bad flag or a bad config file.
 */
export async function parseWithConfigFile(
  spec: CommandSpec,
  args: string[],
  options: Pick<ParseOptions, "env"> = {},
): Promise<{ parsed: ParsedArgs; file?: ConfigSource }> {
  const first = parseCommand(spec, args, options);
  const path = spec.flags.some((f) => f.name === CONFIG_FLAG)
    ? first.string(CONFIG_FLAG)
    : undefined;
  if (first.help || path === undefined) return { parsed: first };
  if (path === "") {
    throw new UsageError(`Invalid --${CONFIG_FLAG} "": give a file`);
  }
  const file = await loadConfigFile(path, spec);
  // The command line wins; a repeatable flag given there replaces the
  // file's list rather than adding to it.
  const initial: ParsedValues = {};
  for (const [key, value] of Object.entries(file.values)) {
    if (!(key in first.explicit)) initial[key] = value;
  }
  return { parsed: parseCommand(spec, args, { ...options, initial }), file };
}
