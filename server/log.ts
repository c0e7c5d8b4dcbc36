/**
 * Structured logging for telejob-server: one JSON object per line on stderr,
 * so that stdout stays free for anything a wrapper wants to print and the
 * log can be piped to `jq`.
 * @module
 */

/** One finished RPC, the line the server writes for every call. */
export interface RpcLogEntry {
  /** The caller (client certificate CN); empty when unauthenticated. */
  user: string;
  /** Method name, e.g. `Start`. */
  method: string;
  /** The job the call was about, when there is one. */
  jobId?: string;
  /** gRPC status code name, e.g. `OK` or `NOT_FOUND`. */
  outcome: string;
  /** Wall time of the call in milliseconds. */
  durationMs: number;
  /** Detail for the operator (never sent to the client). */
  detail?: string;
}

/** Where log lines go. */
export interface Logger {
  /** Logs one finished RPC. */
  rpc(entry: RpcLogEntry): void;
  /** Logs a server event (start-up, shutdown, refused connection, ...). */
  event(event: string, fields?: Record<string, unknown>): void;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Receives each line without its newline; default: stderr. */
  write?: (line: string) => void;
  /** Clock, for tests; default `Date.now`. */
  now?: () => number;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // A closed stderr must not take the server down.
  }
}

/** Creates a logger that writes one JSON object per line. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? writeStderr;
  const now = options.now ?? Date.now;
  const time = (): string => new Date(now()).toISOString();
  return {
    rpc(entry: RpcLogEntry): void {
      const line: Record<string, unknown> = {
        time: time(),
        user: entry.user,
        method: entry.method,
        jobId: entry.jobId ?? null,
        outcome: entry.outcome,
        durationMs: Math.round(entry.durationMs * 1000) / 1000,
      };
      if (entry.detail !== undefined) line.detail = entry.detail;
      write(JSON.stringify(line));
    },
    event(event: string, fields: Record<string, unknown> = {}): void {
      write(JSON.stringify({ time: time(), event, ...fields }));
    },
  };
}
