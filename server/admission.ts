/**
 * Admission of connections and calls under the budgets of `budgets.ts`:
 *
 * - Every accepted TCP connection must finish its TLS handshake within the
 *   handshake deadline (Node's and Deno's default is 120 s), or it is
 *   destroyed: idle unauthenticated sockets cannot pile up.
 * - While the fd reserve is reached, a new connection is closed at once,
 *   before any TLS work.
 * - Over the connection budgets (in total, per client address), a new
 *   connection still completes its handshake, so that its calls can be
 *   answered RESOURCE_EXHAUSTED naming the budget (a bare close would read
 *   as "server unreachable"), and it is closed shortly after.
 * - Each call counts against its user's call budget, and each Logs stream
 *   (which opens a file) against the fd reserve.
 *
 * Refusals and failed handshakes are logged, at most ten lines per second
 * and reason, with a count of those left out, so a flood cannot fill the log.
 * @module
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  type BudgetConfig,
  BudgetError,
  CallBudget,
  FdBudget,
} from "./budgets.ts";
import type { Logger } from "./log.ts";

/** How long a connection over a connection budget stays open after its handshake, for its first calls to be answered. */
export const REFUSED_CONNECTION_MS = 2_000;

function keyOf(address: string | undefined, port: number | undefined): string {
  // "::ffff:127.0.0.1" and "127.0.0.1" are one client.
  const host = (address ?? "").replace(/^::ffff:(?=\d+\.)/, "");
  return `${host}|${port}`;
}

/** The key of a grpc-js peer string: `1.2.3.4:5` or `[::1]:5`. */
function keyOfPeer(peer: string): string {
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(peer);
  return match ? keyOf(match[1], Number(match[2])) : peer;
}

/** Lines per second and reason that {@linkcode RateLimitedLog} lets through. */
const LOG_LINES_PER_SECOND = 10;

/**
 * Logs at most {@linkcode LOG_LINES_PER_SECOND} lines per reason and
 * second; the next line that gets through counts those left out.
 */
class RateLimitedLog {
  readonly #logger: Logger;
  readonly #windows = new Map<
    string,
    { start: number; lines: number; suppressed: number }
  >();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  event(event: string, reason: string, fields: Record<string, unknown>): void {
    const key = `${event}|${reason}`;
    const now = performance.now();
    let window = this.#windows.get(key);
    if (!window || now - window.start >= 1_000) {
      // Forget quiet reasons, so the map cannot grow without bound.
      if (this.#windows.size > 1_000) this.#windows.clear();
      window = { start: now, lines: 0, suppressed: window?.suppressed ?? 0 };
      this.#windows.set(key, window);
    }
    if (window.lines >= LOG_LINES_PER_SECOND) {
      window.suppressed++;
      return;
    }
    window.lines++;
    const suppressed = window.suppressed;
    window.suppressed = 0;
    this.#logger.event(event, {
      ...fields,
      reason,
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }
}

/** Options of {@linkcode Admission}. */
export interface AdmissionOptions {
  /** The budgets. */
  budgets: BudgetConfig;
  /** Receives refusal events. */
  logger: Logger;
  /** The fd reserve (default: one for `budgets.fdReserve`). */
  fds?: FdBudget;
}

interface Pending {
  socket: Socket;
  timer?: ReturnType<typeof setTimeout>;
  /** Why its calls are refused (over a connection budget). */
  refused?: string;
}

/**
 * Applies the budgets to connections (feed it the http2 server's
 * `'connection'` and `'secureConnection'` events) and to calls
 * ({@linkcode Admission.admitCall}).
 */
export class Admission {
  readonly #budgets: BudgetConfig;
  readonly #fds: FdBudget;
  readonly #calls: CallBudget;
  readonly #log: RateLimitedLog;
  readonly #byKey = new Map<string, Pending>();
  readonly #perAddress = new Map<string, number>();
  #total = 0;

  /** Creates the admission control for `options.budgets`. */
  constructor(options: AdmissionOptions) {
    this.#budgets = options.budgets;
    this.#fds = options.fds ?? new FdBudget({
      reserve: options.budgets.fdReserve,
    });
    this.#calls = new CallBudget(options.budgets.maxCallsPerUser);
    this.#log = new RateLimitedLog(options.logger);
  }

  /**
   * Logs `event` with `reason`, at most ten lines a second per reason (with
   * a count of the lines left out): for events a flood of connections causes.
   */
  logLimited(
    event: string,
    reason: string,
    fields: Record<string, unknown> = {},
  ): void {
    this.#log.event(event, reason, fields);
  }

  /** Connections admitted and open (handshaking or not). */
  get connections(): number {
    return this.#total;
  }

  /** A TCP connection was accepted (the http2 server's `'connection'`). */
  connection(socket: Socket): void {
    const address = (socket.remoteAddress ?? "").replace(
      /^::ffff:(?=\d+\.)/,
      "",
    );
    const remote = `${address}:${socket.remotePort}`;
    const fdRefusal = this.#fds.refusal("connection");
    if (fdRefusal !== undefined) {
      socket.destroy();
      this.#log.event("connection_refused", "fd-reserve", {
        remote,
        detail: fdRefusal,
      });
      return;
    }
    const key = keyOf(socket.remoteAddress, socket.remotePort);
    const pending: Pending = { socket };
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (this.#total >= this.#budgets.maxConnections) {
      pending.refused =
        `the server's connection budget of ${this.#budgets.maxConnections} is used up (--max-connections)`;
    } else if (fromAddress >= this.#budgets.maxConnectionsPerAddress) {
      pending.refused =
        `the budget of ${this.#budgets.maxConnectionsPerAddress} connections per client address is used up by ${address} (--max-connections-per-address)`;
    }
    if (pending.refused) {
      this.#log.event("connection_refused", "connection-budget", {
        remote,
        detail: pending.refused,
      });
    } else {
      this.#total++;
      this.#perAddress.set(address, fromAddress + 1);
    }
    this.#byKey.set(key, pending);
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      this.#log.event("connection_refused", "handshake-timeout", {
        remote,
        detail:
          `no TLS handshake within ${this.#budgets.handshakeTimeoutMs} ms`,
      });
      socket.destroy();
    }, this.#budgets.handshakeTimeoutMs);
    socket.once("close", () => {
      clearTimeout(pending.timer);
      if (this.#byKey.get(key) === pending) this.#byKey.delete(key);
      if (pending.refused) return;
      this.#total--;
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left <= 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
  }

  /**
   * A TLS handshake finished (`'secureConnection'`): stops the handshake
   * deadline; a connection over a connection budget is closed after
   * {@linkcode REFUSED_CONNECTION_MS}.
   */
  secured(socket: TLSSocket): void {
    const pending = this.#byKey.get(
      keyOf(socket.remoteAddress, socket.remotePort),
    );
    if (!pending) return;
    clearTimeout(pending.timer);
    pending.timer = undefined;
    if (pending.refused) {
      pending.timer = setTimeout(() => {
        socket.end();
        pending.timer = setTimeout(() => socket.destroy(), 1_000);
      }, REFUSED_CONNECTION_MS);
    }
  }

  /**
   * Admits a call of `user` on the connection of `peer` (grpc-js's
   * `call.getPeer()`): returns the function that ends it, or throws
   * {@linkcode BudgetError}. A stream that opens a file (`opensFile`) also
   * needs a descriptor outside the reserve, and a job start (`startsJob`) one
   * outside half of it.
   */
  admitCall(
    peer: string,
    user: string,
    options: { opensFile?: boolean; startsJob?: boolean } = {},
  ): () => void {
    const refused = this.#byKey.get(keyOfPeer(peer))?.refused;
    if (refused !== undefined) {
      throw new BudgetError(
        `Connection refused: ${refused}; close idle connections or retry later`,
      );
    }
    const release = this.#calls.acquire(user);
    const kind = options.opensFile
      ? "stream"
      : options.startsJob
      ? "job"
      : undefined;
    if (kind !== undefined) {
      const fdRefusal = this.#fds.refusal(kind);
      if (fdRefusal !== undefined) {
        release();
        this.#log.event("call_refused", "fd-reserve", {
          user,
          detail: fdRefusal,
        });
        throw new BudgetError(
          kind === "stream"
            ? `Cannot open another log stream: ${fdRefusal}; end some streams or retry later`
            : `Cannot start another job: ${fdRefusal}; stop some jobs or retry later`,
        );
      }
    }
    return release;
  }
}
