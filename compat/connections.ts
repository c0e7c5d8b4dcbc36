/**
 * Closes the server's client connections at shutdown without sending HTTP/2
 * GOAWAY.
 *
 * Why: a grpc-js client on Deno 2.9.4 – 2.9.6 that receives GOAWAY on a
 * connection that has carried streams can abort in nghttp2
 * (`find_stream_on_goaway_func: Assertion 'stream->closed_next == NULL'`)
 * or die of SIGSEGV: the client-side face of the use-after-free that
 * `goaway.ts` works around on the server (denoland/deno#36788). grpc-js's
 * `tryShutdown` sends GOAWAY on every session (`session.close()`), and its
 * `forceShutdown` too (`session.destroy(code)`), so a server restart could
 * crash every connected Deno client: `telejob logs -f`, `telejob run`, any
 * long-lived grpc-js program. A client can do nothing about a frame it
 * receives, so the server must not send one.
 *
 * Instead, once a connection has no call in flight, we give the client a
 * short time to close it first (the CLI exits as soon as its stream ended
 * with UNAVAILABLE), then end the TLS socket ourselves. Either way the client
 * sees the connection end, which grpc-js reports as UNAVAILABLE, and no
 * GOAWAY frame is ever parsed.
 *
 * REMOVE together with `goaway.ts` once the pinned Deno has the fix: then
 * grpc-js's own graceful shutdown is the better behaviour (GOAWAY tells a
 * client which calls were not processed).
 * @module
 */
import type { ServerHttp2Session } from "node:http2";
import type { TLSSocket } from "node:tls";

/** Options of {@linkcode ConnectionTracker.drain}. */
export interface DrainOptions {
  /**
   * How long a connection without calls in flight is left for its client to
   * close, before the server ends it (default 1 s).
   */
  clientCloseMs?: number;
  /**
   * Upper bound for the whole drain (default 5 s): afterwards every
   * connection left is destroyed, calls in flight or not.
   */
  timeoutMs?: number;
}

/** What {@linkcode ConnectionTracker.drain} did. */
export interface DrainResult {
  /** Connections that were open when the drain started. */
  connections: number;
  /** Of those, how many the server ended (the others closed themselves). */
  ended: number;
  /** Connections destroyed with calls still in flight at `timeoutMs`. */
  forced: number;
}

function peerOf(socket: { remoteAddress?: string; remotePort?: number }) {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

interface Tracked {
  socket: TLSSocket;
  /** Open HTTP/2 streams (calls in flight) on the connection. */
  streams: number;
  /** Notified when `streams` drops to 0 or the socket closes. */
  onChange?: () => void;
}

/**
 * Tracks the server's TLS connections and their open streams, and closes
 * them at shutdown without GOAWAY (see the module doc). Feed it from the
 * http2 server's `'secureConnection'` and `'session'` events.
 */
export class ConnectionTracker {
  readonly #bySocket = new Map<TLSSocket, Tracked>();
  readonly #byPeer = new Map<string, Tracked>();
  #draining = false;

  /** Number of open connections. */
  get size(): number {
    return this.#bySocket.size;
  }

  /** Whether {@linkcode drain} has started: refuse new connections then. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Records a connection whose TLS handshake finished. */
  addSocket(socket: TLSSocket): void {
    if (this.#bySocket.has(socket) || socket.destroyed) return;
    const tracked: Tracked = { socket, streams: 0 };
    this.#bySocket.set(socket, tracked);
    const peer = peerOf(socket);
    this.#byPeer.set(peer, tracked);
    socket.once("close", () => {
      this.#bySocket.delete(socket);
      if (this.#byPeer.get(peer) === tracked) this.#byPeer.delete(peer);
      tracked.onChange?.();
    });
  }

  /**
   * Counts the streams of `session`, whose socket must have been passed to
   * {@linkcode addSocket}. (`session.socket` is a proxy that refuses `end`
   * and `destroy`, so the socket itself is found by its peer address.)
   */
  addSession(session: ServerHttp2Session): void {
    const tracked = session.socket
      ? this.#byPeer.get(peerOf(session.socket))
      : undefined;
    if (!tracked) return;
    session.on("stream", (stream) => {
      tracked.streams++;
      stream.once("close", () => {
        tracked.streams--;
        if (tracked.streams === 0) tracked.onChange?.();
      });
    });
  }

  /**
   * Closes every connection without GOAWAY: each one, once it has no stream
   * open, gets `clientCloseMs` for its client to close it, then the server
   * ends it; at `timeoutMs` whatever is left is destroyed. Resolves when
   * every connection is closed.
   */
  drain(options: DrainOptions = {}): Promise<DrainResult> {
    this.#draining = true;
    const clientCloseMs = options.clientCloseMs ?? 1_000;
    const timeoutMs = options.timeoutMs ?? 5_000;
    const result: DrainResult = {
      connections: this.#bySocket.size,
      ended: 0,
      forced: 0,
    };
    const all = [...this.#bySocket.values()].map((tracked) =>
      new Promise<void>((resolve) => {
        let idleTimer: ReturnType<typeof setTimeout> | undefined;
        const deadline = setTimeout(() => {
          // Calls still in flight: this ends them without trailers.
          result.forced++;
          tracked.socket.destroy();
        }, timeoutMs);
        const check = (): void => {
          if (!this.#bySocket.has(tracked.socket)) {
            clearTimeout(idleTimer);
            clearTimeout(deadline);
            tracked.onChange = undefined;
            resolve();
            return;
          }
          if (tracked.streams > 0 || idleTimer !== undefined) return;
          idleTimer = setTimeout(() => {
            if (tracked.streams > 0) {
              idleTimer = undefined;
              return;
            }
            result.ended++;
            // end() flushes what was written (the last trailers) first; the
            // socket then closes once the client answers or at `deadline`.
            tracked.socket.end();
            idleTimer = setTimeout(() => tracked.socket.destroy(), 1_000);
          }, clientCloseMs);
        };
        tracked.onChange = check;
        check();
      })
    );
    return Promise.all(all).then(() => result);
  }
}
