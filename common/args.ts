/**
 * Command-line flags for `telejob` and `telejob-server`: the one wrapper
 * around `node:util` `parseArgs` (`@std/cli` is not reachable here).
 *
 * A {@linkcode CommandSpec} lists a command's flags; {@linkcode parseCommand}
 * reads them with, for each flag, the precedence flag > environment variable
 * > default, and {@linkcode helpText} renders `--help` from the same spec.
 *
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const spec: CommandSpec = {
 *   name: "telejob stop",
 *   usage: "[flags] ID",
 *   summary: "Stop a job.",
 *   flags: [{ name: "grace", type: "string", value: "DURATION", default: "10s",
 *     description: "Time between SIGTERM and SIGKILL" }],
 *   positionals: { min: 1, max: 1, name: "job ID" },
 * };
 * const parsed = parseCommand(spec, ["--grace", "2s", "7"]);
 * assert.equal(parsed.string("grace"), "2s");
 * assert.deepEqual(parsed.positionals, ["7"]);
 * ```
 *
 * Every mistake throws a {@linkcode UsageError} whose message names the flag
 * and the command and says to run `--help`; callers print it and exit 2.
 * @module
 */
import { parseArgs } from "node:util";

/** One flag of a command. */
export interface FlagSpec {
  /** Long name without the dashes: `grace` for `--grace`. */
  name: string;
  /** One-letter alias without the dash: `f` for `-f`. */
  short?: string;
  /** `string` flags take a value (`--x V` or `--x=V`); `boolean` ones don't. */
  type: "string" | "boolean";
  /** May be given more than once; the values are collected in order. */
  multiple?: boolean;
  /** Environment variable used when the flag is not given. */
  env?: string;
  /** Value when neither the flag nor its environment variable is set. */
  default?: string;
  /** Placeholder for the value in help text, e.g. `DURATION`. */
  value?: string;
  /** One line for the help text. */
  description: string;
  /** Heading under which help lists the flag; default "Flags". */
  group?: string;
}

/** A command: its flags, positional arguments and help text. */
export interface CommandSpec {
  /** Full command name, as the user types it: `telejob start`. */
  name: string;
  /** Usage after the name, e.g. `[flags] [--] COMMAND [ARG...]`. */
  usage: string;
  /** One sentence saying what the command does. */
  summary: string;
  /** Free text printed after the flags (commands, examples, notes). */
  details?: string;
  /** The command's flags; `-h, --help` is always added. */
  flags: FlagSpec[];
  /**
   * Flags end at the first positional argument, so that in
   * `telejob start ls -la` the `-la` belongs to `ls`. Otherwise flags may
   * follow positionals (`telejob status 1 --output json`).
   */
  stopAtPositional?: boolean;
  /** How many positionals are allowed, and what to call them in errors. */
  positionals?: { min?: number; max?: number; name?: string };
}

/** Options of {@linkcode parseCommand}. */
export interface ParseOptions {
  /** Looks up environment variables; default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /**
   * Values already given elsewhere (global flags before a subcommand);
   * flags in `args` override them, and they override env and defaults.
   */
  initial?: ParsedValues;
}

/** Flag values by long name; absent when not set anywhere. */
export type ParsedValues = Record<string, string | boolean | string[]>;

/** A mistake on the command line; print the message and exit 2. */
export class UsageError extends Error {
  /** Creates a usage error; the message already says what to do. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The result of {@linkcode parseCommand}. */
export class ParsedArgs {
  /** Flag values after env and defaults were applied. */
  readonly values: ParsedValues;
  /** Flags given on the command line (or in `initial`) only. */
  readonly explicit: ParsedValues;
  /** Positional arguments, `--` removed. */
  readonly positionals: string[];
  /** `-h` or `--help` was given: print {@linkcode helpText} and exit 0. */
  readonly help: boolean;
  readonly #spec: CommandSpec;

  /** Wraps parsed values; use {@linkcode parseCommand} to make one. */
  constructor(
    spec: CommandSpec,
    parts: {
      values: ParsedValues;
      explicit: ParsedValues;
      positionals: string[];
      help: boolean;
    },
  ) {
    this.#spec = spec;
    this.values = parts.values;
    this.explicit = parts.explicit;
    this.positionals = parts.positionals;
    this.help = parts.help;
  }

  /** The value of a string flag, or undefined when not set anywhere. */
  string(name: string): string | undefined {
    const v = this.values[this.#flag(name, "string", false).name];
    return typeof v === "string" ? v : undefined;
  }

  /** Whether a boolean flag was given (or its env var is truthy). */
  boolean(name: string): boolean {
    return this.values[this.#flag(name, "boolean", false).name] === true;
  }

  /** Every value of a repeatable string flag, in order. */
  strings(name: string): string[] {
    const v = this.values[this.#flag(name, "string", true).name];
    return Array.isArray(v) ? v : [];
  }

  #flag(name: string, type: FlagSpec["type"], multiple: boolean): FlagSpec {
    const flag = this.#spec.flags.find((f) => f.name === name);
    // A programming error, not a user's: the spec and the code disagree.
    if (!flag || flag.type !== type || !!flag.multiple !== multiple) {
      throw new Error(
        `${this.#spec.name} has no ${
          multiple ? "repeatable " : ""
        }${type} flag --${name}`,
      );
    }
    return flag;
  }
}

const HELP: FlagSpec = {
  name: "help",
  short: "h",
  type: "boolean",
  description: "Show this help",
};

function hint(spec: CommandSpec): string {
  return `run "${spec.name} --help"`;
}

/**
 * Index of the first positional argument (or of `--`) in `args`, reading
 * flags the way `parseArgs` does; `args.length` when there is none.
 */
function firstPositional(args: string[], flags: FlagSpec[]): number {
  const byLong = new Map(flags.map((f) => [f.name, f]));
  const byShort = new Map(
    flags.filter((f) => f.short).map((f) => [f.short!, f]),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return i;
    if (arg.startsWith("--")) {
      if (!arg.includes("=") && byLong.get(arg.slice(2))?.type === "string") {
        i++;
      }
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      // A short group like -fx: a string flag takes the rest of the group
      // as its value, or the next argument when it ends the group.
      for (let j = 1; j < arg.length; j++) {
        if (byShort.get(arg[j])?.type === "string") {
          if (j === arg.length - 1) i++;
          break;
        }
      }
      continue;
    }
    return i;
  }
  return args.length;
}

function envValue(
  flag: FlagSpec,
  env: (name: string) => string | undefined,
): string | boolean | string[] | undefined {
  if (!flag.env) return undefined;
  const raw = env(flag.env);
  if (raw === undefined || raw === "") return undefined;
  if (flag.type === "boolean") {
    return !["0", "false", "no", "off"].includes(raw.toLowerCase());
  }
  return flag.multiple ? [raw] : raw;
}

/**
 * Parses `args` against `spec`. Each flag's value comes from the command
 * line, else `options.initial`, else its environment variable, else its
 * default. Positionals are checked against `spec.positionals` unless help
 * was asked for.
 *
 * @throws {UsageError} for an unknown flag, a missing or unexpected value,
 * or the wrong number of positionals.
 */
export function parseCommand(
  spec: CommandSpec,
  args: string[],
  options: ParseOptions = {},
): ParsedArgs {
  const flags = [...spec.flags, HELP];
  const env = options.env ?? ((name: string) => Deno.env.get(name));

  let head = args;
  let tail: string[] = [];
  if (spec.stopAtPositional) {
    const at = firstPositional(args, flags);
    head = args.slice(0, at);
    tail = args.slice(args[at] === "--" ? at + 1 : at);
  }

  const parseOptions: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const f of flags) {
    // parseArgs rejects keys that are present but undefined.
    parseOptions[f.name] = { type: f.type, multiple: f.multiple === true };
    if (f.short) parseOptions[f.name].short = f.short;
  }
  // Non-strict with tokens: we check each token ourselves, so errors can
  // name the command and point to its --help.
  const { tokens } = parseArgs({
    args: head,
    options: parseOptions,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });

  const explicit: ParsedValues = { ...(options.initial ?? {}) };
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      positionals.push(token.value);
      continue;
    }
    if (token.kind === "option-terminator") continue;
    const flag = flags.find((f) => f.name === token.name);
    if (!flag || (token.rawName.length === 2 && flag.short === undefined)) {
      throw new UsageError(
        `Unknown flag ${token.rawName} for "${spec.name}": ${hint(spec)}`,
      );
    }
    if (flag.type === "boolean") {
      if (token.value !== undefined) {
        throw new UsageError(
          `Flag ${token.rawName} takes no value, got ${
            JSON.stringify(token.value)
          }: ${hint(spec)}`,
        );
      }
      explicit[flag.name] = true;
      continue;
    }
    const value = token.value;
    if (value === undefined || (!token.inlineValue && value.startsWith("-"))) {
      throw new UsageError(
        `Flag ${token.rawName} needs a value${
          value === undefined
            ? ""
            : ` (to pass one starting with a dash, write --${flag.name}=${value})`
        }: ${hint(spec)}`,
      );
    }
    if (flag.multiple) {
      const prior = explicit[flag.name];
      explicit[flag.name] = [...(Array.isArray(prior) ? prior : []), value];
    } else {
      explicit[flag.name] = value;
    }
  }
  positionals.push(...tail);

  const values: ParsedValues = {};
  for (const flag of flags) {
    const v = explicit[flag.name] ?? envValue(flag, env) ??
      (flag.default === undefined
        ? undefined
        : flag.multiple
        ? [flag.default]
        : flag.default);
    if (v !== undefined) values[flag.name] = v;
  }
  const help = values.help === true;

  if (!help && spec.positionals) {
    const { min = 0, max = Infinity, name = "argument" } = spec.positionals;
    if (positionals.length < min) {
      throw new UsageError(`Missing ${name} for "${spec.name}": ${hint(spec)}`);
    }
    if (positionals.length > max) {
      throw new UsageError(
        `Unexpected argument ${
          JSON.stringify(positionals[max])
        } for "${spec.name}": ${hint(spec)}`,
      );
    }
  }
  return new ParsedArgs(spec, { values, explicit, positionals, help });
}

function flagLabel(flag: FlagSpec): string {
  const long = `--${flag.name}${
    flag.type === "string" ? ` ${flag.value ?? "VALUE"}` : ""
  }`;
  return flag.short ? `-${flag.short}, ${long}` : `    ${long}`;
}

function flagNotes(flag: FlagSpec): string {
  const notes: string[] = [];
  if (flag.multiple) notes.push("repeatable");
  if (flag.env) notes.push(`$${flag.env}`);
  if (flag.default !== undefined) notes.push(`default ${flag.default}`);
  return notes.length ? ` (${notes.join(", ")})` : "";
}

/**
 * Renders the `--help` text of a command: usage line, summary, the flags
 * by group with their environment variables and defaults, then details.
 */
export function helpText(spec: CommandSpec): string {
  const flags = [...spec.flags, HELP];
  const width = Math.max(...flags.map((f) => flagLabel(f).length)) + 2;
  const groups = new Map<string, FlagSpec[]>();
  for (const flag of flags) {
    const group = flag.group ?? "Flags";
    groups.set(group, [...(groups.get(group) ?? []), flag]);
  }
  const lines = [`Usage: ${spec.name} ${spec.usage}`, "", spec.summary];
  for (const [group, members] of groups) {
    lines.push("", `${group}:`);
    for (const flag of members) {
      lines.push(
        `  ${flagLabel(flag).padEnd(width)}${flag.description}${
          flagNotes(flag)
        }`,
      );
    }
  }
  if (spec.details) lines.push("", spec.details.trimEnd());
  return lines.join("\n") + "\n";
}
