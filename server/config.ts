/**
 * telejob-server's command line: the seed's flags and environment variables
 * plus ours, parsed with the project's one `parseArgs` wrapper
 * (`common/args.ts`). Every mistake is a {@linkcode UsageError} whose
 * message names the flag and what is allowed; anything else (a bug, a host
 * failure) propagates as itself.
 * @module
 */
import { splitHostPort } from "../common/address.ts";
import {
  type CommandSpec,
  helpText,
  type ParsedArgs,
  UsageError,
} from "../common/args.ts";
import { parseWithConfigFile } from "./config_file.ts";
import { parseByteSize } from "../common/size.ts";
import { type Limits, parseLimitFlags } from "../cgroup/mod.ts";
import { type BudgetConfig, DEFAULT_BUDGETS } from "./budgets.ts";
import {
  type IdRange,
  parseIdRange,
  parseRunAs,
  type RunAsRule,
} from "./jobs/identity.ts";

export { UsageError };

/** Default listen address, as in the seed. */
export const DEFAULT_ADDRESS = "localhost:8443";
/** Default data directory. */
export const DEFAULT_DATA_DIR = "/var/lib/telejob";

/** Budget flags: name, value, description, default; parsed in {@linkcode parseBudgets}. */
const BUDGET_FLAGS: [string, string, string, string][] = [
  [
    "max-connections",
    "N",
    "Client connections open at once, in total",
    String(DEFAULT_BUDGETS.maxConnections),
  ],
  [
    "max-connections-per-address",
    "N",
    "Client connections open at once from one IP address",
    String(DEFAULT_BUDGETS.maxConnectionsPerAddress),
  ],
  [
    "max-streams-per-connection",
    "N",
    "Calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)",
    String(DEFAULT_BUDGETS.maxStreamsPerConnection),
  ],
  [
    "max-calls-per-user",
    "N",
    "Calls and log streams in progress at once per user",
    String(DEFAULT_BUDGETS.maxCallsPerUser),
  ],
  [
    "handshake-timeout",
    "DURATION",
    "Time a new connection has to finish its TLS handshake: 10s, 500ms",
    `${DEFAULT_BUDGETS.handshakeTimeoutMs / 1000}s`,
  ],
  [
    "fd-reserve",
    "N",
    "File descriptors kept free for accept, the store, output files and job starts: connections and log streams are refused while fewer are free (0 turns it off)",
    String(DEFAULT_BUDGETS.fdReserve),
  ],
];

/** The flags of telejob-server. */
export const SERVER_SPEC: CommandSpec = {
  name: "telejob-server",
  usage: "--server-cert FILE --server-key FILE --client-ca-cert FILE [flags]",
  summary:
    "Serve the Telejob gRPC API over mutual TLS 1.3: run commands as jobs under cgroup limits for clients whose certificate the client CA issued (the certificate's common name is the user).",
  flags: [
    {
      name: "config",
      type: "string",
      value: "FILE",
      description:
        'TOML file with any of these flags as keys (admin = ["alice"]); flags given here override it',
      group: "Server",
    },
    {
      name: "address",
      type: "string",
      value: "HOST:PORT",
      env: "TELEJOB_ADDRESS",
      default: DEFAULT_ADDRESS,
      description: "Address to listen on (port 0 picks a free port)",
      group: "Server",
    },
    {
      name: "server-cert",
      type: "string",
      value: "FILE",
      description: "Server certificate chain, PEM (required)",
      group: "TLS",
    },
    {
      name: "server-key",
      type: "string",
      value: "FILE",
      description: "Server private key, PEM, ECDSA P-256 (required)",
      group: "TLS",
    },
    {
      name: "client-ca-cert",
      type: "string",
      value: "FILE",
      description:
        "CA certificate that client certificates must chain to (required)",
      group: "TLS",
    },
    {
      name: "cpu-limit",
      type: "string",
      value: "CPUS",
      description: "CPU limit per job in cores, e.g. 0.2",
      group:
        "Job limits (defaults and ceilings; a job may ask for tighter ones)",
    },
    {
      name: "memory-limit",
      type: "string",
      value: "SIZE",
      description: "Memory limit per job in KiB, or with a unit: 512M, 2G",
      group:
        "Job limits (defaults and ceilings; a job may ask for tighter ones)",
    },
    {
      name: "io-limit",
      type: "string",
      multiple: true,
      value: '"MAJ:MIN rbps=N wbps=N riops=N wiops=N"',
      description: "Disk throttle per job; a device path may stand for MAJ:MIN",
      group:
        "Job limits (defaults and ceilings; a job may ask for tighter ones)",
    },
    {
      name: "pids-limit",
      type: "string",
      value: "N",
      description: "Most processes and threads per job",
      group:
        "Job limits (defaults and ceilings; a job may ask for tighter ones)",
    },
    {
      name: "output-limit",
      type: "string",
      value: "SIZE",
      default: "1G",
      description: "Output kept per job, bytes or with a unit: 512M, 2G",
      group: "Jobs",
    },
    {
      name: "data-dir",
      type: "string",
      value: "DIR",
      default: DEFAULT_DATA_DIR,
      description: "Where job records and output are kept",
      group: "Jobs",
    },
    {
      name: "admin",
      type: "string",
      multiple: true,
      value: "CN",
      description:
        "User (certificate common name) who may see and stop every job",
      group: "Jobs",
    },
    {
      name: "max-jobs-per-user",
      type: "string",
      value: "N",
      description: "Most running jobs per user (default unlimited)",
      group: "Jobs",
    },
    {
      name: "cgroup-parent",
      type: "string",
      value: "PATH",
      description:
        "Cgroup for job cgroups: absolute from the hierarchy root, or relative to the server's own (default: the server's own)",
      group: "Jobs",
    },
    ...BUDGET_FLAGS.map(([name, value, description, fallback]) => ({
      name,
      type: "string" as const,
      value,
      default: fallback,
      description,
      group: "Resource budgets (at a budget, new calls get RESOURCE_EXHAUSTED)",
    })),
    {
      name: "run-as",
      type: "string",
      multiple: true,
      value: "'CN=LOGIN[,LOGIN...]'",
      description:
        'Let user CN ("*": every user) run jobs as these login accounts with --user (root only when named); without it every job runs as its owner\'s own unprivileged uid',
      group: "Job identities",
    },
    {
      name: "uid-range",
      type: "string",
      value: "FIRST-LAST",
      default: "2000000000-2000999999",
      description:
        "Uids (and gids) of the owners' own identities; ids that /etc/passwd or /etc/group use are skipped",
      group: "Job identities",
    },
    {
      name: "shim",
      type: "string",
      value: "PATH",
      description:
        "The startup helper telejob-shim (default: next to the server, embedded, or built from source)",
      group: "Job identities",
    },
  ],
  positionals: { max: 0 },
  details:
    `--version prints the version, the commit and the Deno version, and exits.
Logs: one JSON line per RPC (time, user, method, jobId, outcome, durationMs) on stderr.
SIGINT or SIGTERM shut the server down gracefully: it stops accepting calls,
ends log streams, stops running jobs and exits 0.
Certificates: "telejob-server certs --help" makes or renews them.

Example:
  sudo telejob-server --server-cert server.crt --server-key server.key \\
      --client-ca-cert client-ca.crt --cpu-limit 0.2 --memory-limit 512M
  sudo telejob-server --config /etc/telejob/server.toml`,
};

/** Where to listen. */
export interface ListenAddress {
  /** Host name or IP (IPv6 without brackets). */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
}

/** telejob-server's parsed configuration. */
export interface ServerConfig {
  /** `--address`. */
  address: ListenAddress;
  /** `--server-cert`. */
  serverCert: string;
  /** `--server-key`. */
  serverKey: string;
  /** `--client-ca-cert`. */
  clientCaCert: string;
  /** Job limits from the limit flags. */
  limits: Limits;
  /** `--output-limit` in bytes. */
  outputLimitBytes: number;
  /** `--data-dir`. */
  dataDir: string;
  /** `--admin`, every value. */
  admins: string[];
  /** `--max-jobs-per-user`; undefined means unlimited. */
  maxJobsPerUser?: number;
  /** `--cgroup-parent`. */
  cgroupParent?: string;
  /** The resource budgets (`--max-connections`, `--fd-reserve`, ...). */
  budgets: BudgetConfig;
  /** `--run-as`, every value. */
  runAs: RunAsRule[];
  /** `--uid-range`. */
  uidRange: IdRange;
  /** `--shim`. */
  shimPath?: string;
}

/** The result of {@linkcode parseServerArgs}: a config, or help to print. */
export type ParsedServerArgs =
  | { help: string }
  | { config: ServerConfig };

/**
 * Parses `--address` with the one `HOST:PORT` grammar (`common/address.ts`;
 * `[v6]:PORT` for IPv6, port 0 for any free port); throws
 * {@linkcode UsageError} saying which part is wrong.
 */
export function parseAddress(value: string): ListenAddress {
  const parsed = splitHostPort(value, { minPort: 0 });
  if (typeof parsed === "string") {
    throw new UsageError(
      `Invalid --address ${
        JSON.stringify(value)
      }: ${parsed}; use HOST:PORT like localhost:8443 or [::1]:8443`,
    );
  }
  return parsed;
}

/** Parses `--output-limit`: bytes, or with a unit (K, M, G, T; powers of 1024). */
export function parseOutputLimit(value: string): number {
  const bytes = parseByteSize(value, { plainUnit: 1 });
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(
      `Invalid --output-limit ${
        JSON.stringify(value)
      }: expected a positive size in bytes or with a unit (K, M, G, T), like 512M`,
    );
  }
  return bytes;
}

function parsePositive(flag: string, value: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(
      `Invalid --${flag} ${
        JSON.stringify(value)
      }: expected a whole number of at least 1`,
    );
  }
  return n;
}

/** Parses a duration such as `10s`, `500ms` or `10` (seconds) into ms. */
export function parseDurationMs(flag: string, value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(value);
  const ms = match ? Number(match[1]) * (match[2] === "ms" ? 1 : 1000) : NaN;
  if (!Number.isFinite(ms) || ms < 1 || ms > 3_600_000) {
    throw new UsageError(
      `Invalid --${flag} ${
        JSON.stringify(value)
      }: expected a duration from 1ms to 3600s, like 10s or 500ms`,
    );
  }
  return Math.round(ms);
}

function parseBudgets(
  get: (name: string) => string | undefined,
): BudgetConfig {
  const count = (name: string, fallback: number, min = 1): number => {
    const value = get(name);
    if (value === undefined) return fallback;
    if (min === 0 && /^\s*0+\s*$/.test(value)) return 0;
    return parsePositive(name, value);
  };
  const timeout = get("handshake-timeout");
  return {
    maxConnections: count("max-connections", DEFAULT_BUDGETS.maxConnections),
    maxConnectionsPerAddress: count(
      "max-connections-per-address",
      DEFAULT_BUDGETS.maxConnectionsPerAddress,
    ),
    maxStreamsPerConnection: count(
      "max-streams-per-connection",
      DEFAULT_BUDGETS.maxStreamsPerConnection,
    ),
    maxCallsPerUser: count(
      "max-calls-per-user",
      DEFAULT_BUDGETS.maxCallsPerUser,
    ),
    handshakeTimeoutMs: timeout === undefined
      ? DEFAULT_BUDGETS.handshakeTimeoutMs
      : parseDurationMs("handshake-timeout", timeout),
    fdReserve: count("fd-reserve", DEFAULT_BUDGETS.fdReserve, 0),
  };
}

/**
 * Turns a rejection from one of the flag parsers (`parseLimitFlags`,
 * `parseRunAs`, `parseIdRange`) into a {@linkcode UsageError}. Those parsers
 * report bad input with a plain `Error` whose message names the flag; any
 * other throw (a `TypeError`, a `RangeError`, a `Deno.errors.*`, a non-Error)
 * is a bug or a host failure, and is returned unchanged so that it
 * propagates with its stack instead of becoming exit code 2.
 */
export function asUsageError(error: unknown): unknown {
  if (
    error instanceof Error && Object.getPrototypeOf(error) === Error.prototype
  ) {
    return new UsageError(error.message);
  }
  return error;
}

/**
 * Parses telejob-server's arguments (flags, then the `--config` file, then
 * environment, then defaults). Throws {@linkcode UsageError} naming the
 * flag at fault, and the file and line when the value came from the file.
 */
export async function parseServerArgs(
  args: string[],
  options: { env?: (name: string) => string | undefined } = {},
): Promise<ParsedServerArgs> {
  const { parsed, file } = await parseWithConfigFile(
    SERVER_SPEC,
    args,
    options,
  );
  try {
    return await serverConfigFrom(parsed);
  } catch (error) {
    throw file ? file.explain(error, parsed) : error;
  }
}

async function serverConfigFrom(parsed: ParsedArgs): Promise<ParsedServerArgs> {
  if (parsed.help) return { help: helpText(SERVER_SPEC) };

  const required = (name: string): string => {
    const value = parsed.string(name);
    if (value === undefined || value === "") {
      throw new UsageError(
        `Missing --${name}: telejob-server needs --server-cert, --server-key and --client-ca-cert; run "telejob-server --help"`,
      );
    }
    return value;
  };
  const serverCert = required("server-cert");
  const serverKey = required("server-key");
  const clientCaCert = required("client-ca-cert");
  const address = parseAddress(parsed.string("address") ?? DEFAULT_ADDRESS);

  let limits: Limits;
  try {
    limits = await parseLimitFlags({
      cpuLimit: parsed.string("cpu-limit"),
      memoryLimit: parsed.string("memory-limit"),
      ioLimit: parsed.strings("io-limit"),
      pidsLimit: parsed.string("pids-limit"),
    });
  } catch (error) {
    throw asUsageError(error);
  }

  const admins = parsed.strings("admin");
  for (const admin of admins) {
    if (admin.trim() === "") {
      throw new UsageError(
        'Invalid --admin "": give the common name of an administrator\'s client certificate',
      );
    }
  }
  const max = parsed.string("max-jobs-per-user");
  const dataDir = parsed.string("data-dir") ?? DEFAULT_DATA_DIR;
  if (dataDir === "") {
    throw new UsageError('Invalid --data-dir "": give a directory');
  }
  const cgroupParent = parsed.string("cgroup-parent");
  const shimPath = parsed.string("shim");
  let runAs: RunAsRule[];
  let uidRange: IdRange;
  try {
    runAs = parsed.strings("run-as").map(parseRunAs);
    uidRange = parseIdRange(
      parsed.string("uid-range") ?? "2000000000-2000999999",
    );
  } catch (error) {
    throw asUsageError(error);
  }
  return {
    config: {
      address,
      serverCert,
      serverKey,
      clientCaCert,
      limits,
      outputLimitBytes: parseOutputLimit(parsed.string("output-limit") ?? "1G"),
      dataDir,
      admins,
      maxJobsPerUser: max === undefined
        ? undefined
        : parsePositive("max-jobs-per-user", max),
      cgroupParent: cgroupParent === "" ? undefined : cgroupParent,
      budgets: parseBudgets((name) => parsed.string(name)),
      runAs,
      uidRange,
      shimPath: shimPath === "" ? undefined : shimPath,
    },
  };
}
