/**
 * A raw HTTP/2 client for the hostile tests: it speaks gRPC's framing by
 * hand over `node:http2`, so a test can do what a well-behaved client never
 * does: open hundreds of streams on one connection, never open its flow
 * control window, hold sockets without a TLS handshake.
 * @module
 */
import http2 from "node:http2";
import net from "node:net";
import { Buffer } from "node:buffer";
import { setTimeout as delay } from "node:timers/promises";
import {
  LogsRequest,
  StartRequest,
} from "../../proto/gen/telejob/v1/telejob.ts";
import {
  call,
  clientFor,
  type ServerProcess,
  startServer,
  testdata,
} from "../server_harness.ts";

/** How a raw gRPC call ended. */
export interface RawOutcome {
  /** `grpc-status` (number as text), or `"reset"` / `"error"`. */
  status: string;
  /** `grpc-message`, decoded. */
  message: string;
}

/** Opens a mutual-TLS HTTP/2 session as test identity `name`. */
export function rawSession(
  port: number,
  options: { name?: string; settings?: http2.Settings } = {},
): Promise<http2.ClientHttp2Session> {
  const name = options.name ?? "client1";
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ca: Buffer.from(testdata("server-ca.crt")),
      cert: Buffer.from(testdata(`${name}.crt`)),
      key: Buffer.from(testdata(`${name}.key`)),
      servername: "localhost",
      settings: options.settings,
    });
    session.on("error", () => {});
    session.once("connect", () => resolve(session));
    session.once("close", () => reject(new Error("session closed")));
  });
}

/** Closes a session at once, streams and all. */
export function dropSession(session: http2.ClientHttp2Session): void {
  session.destroy();
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** A Logs call on `session`; `read: false` never reads (nor opens the window). */
export function rawLogs(
  session: http2.ClientHttp2Session,
  request: { id: string; follow?: boolean },
  options: { read?: boolean } = {},
): { stream: http2.ClientHttp2Stream; outcome: Promise<RawOutcome> } {
  const stream = session.request({
    ":method": "POST",
    ":path": "/telejob.v1.Telejob/Logs",
    "content-type": "application/grpc",
    "te": "trailers",
  });
  const outcome = new Promise<RawOutcome>((resolve) => {
    const done = (headers: http2.IncomingHttpHeaders): void => {
      const status = headers["grpc-status"];
      if (status === undefined) return;
      resolve({
        status: String(status),
        message: decodeURIComponent(String(headers["grpc-message"] ?? "")),
      });
    };
    stream.on("response", done);
    stream.on("trailers", done);
    stream.on("error", (e) => resolve({ status: "error", message: e.message }));
    stream.on(
      "close",
      () =>
        resolve({ status: "reset", message: `RST_STREAM ${stream.rstCode}` }),
    );
  });
  if (options.read !== false) stream.resume();
  stream.end(
    frame(
      LogsRequest.encode({
        id: request.id,
        follow: request.follow ?? false,
        offset: 0,
      }).finish(),
    ),
  );
  return { stream, outcome };
}

/**
 * Opens `count` plain TCP connections that never finish a TLS handshake.
 * With `firstByte`, each sends the first byte of a TLS record and stops
 * there: a connection the kernel dropped from a full accept queue then
 * comes back (its data retransmits), so every one reaches the server.
 */
export async function idleSockets(
  port: number,
  count: number,
  options: { firstByte?: boolean } = {},
): Promise<net.Socket[]> {
  const sockets = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.on("error", () => {});
        socket.once("connect", () => {
          if (options.firstByte) socket.write(new Uint8Array([0x16]));
          resolve(socket);
        });
        socket.once("close", () => resolve(socket));
      })),
  );
  return sockets;
}

/** Open fds of process `pid`. */
export function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** Resident memory of process `pid`, in bytes. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kib) throw new Error(`No VmRSS for ${pid}`);
  return Number(kib[1]) * 1024;
}

/** Starts `command` as client1's job and returns its id. */
export async function startJob(
  server: ServerProcess,
  command: string,
  args: string[],
): Promise<string> {
  const client = clientFor(server, "client1");
  try {
    const { id } = await call<{ id: string }>(
      client,
      "start",
      StartRequest.fromPartial({ command, args }),
    );
    return id;
  } finally {
    client.close();
  }
}

/**
 * Starts a fresh server whose only job is `command`, waits for the job to
 * end (or not, with `follow`) by polling its status, so that the server has
 * read nothing yet, and opens `count` Logs streams of it whose readers never
 * open their window, ten per session (`deno task bench hostile` and
 * `tests/hostile/streams_test.ts`). Returns the server's RSS growth per
 * stream and its RSS with them open.
 */
export async function streamsMemory(
  serverArgs: string[],
  count: number,
  job: { command: string; args: string[]; follow: boolean },
): Promise<{ perStream: number; rss: number }> {
  const server = await startServer({
    args: [
      ...serverArgs,
      "--max-calls-per-user",
      String(count * 2),
    ],
  });
  try {
    const id = await startJob(server, job.command, job.args);
    if (!job.follow) {
      const client = clientFor(server, "client1");
      try {
        for (;;) {
          const { job: info } = await call<{ job: { endedAt?: unknown } }>(
            client,
            "status",
            { id },
          );
          if (info.endedAt) break;
          await delay(100);
        }
      } finally {
        client.close();
      }
    }
    await delay(1_000);
    const pid = server.child.pid;
    const before = rssBytes(pid);
    const sessions = await Promise.all(
      Array.from(
        { length: Math.ceil(count / 10) },
        () => rawSession(server.port, { settings: { initialWindowSize: 0 } }),
      ),
    );
    let started = 0;
    for (let i = 0; i < count; i++) {
      const { stream, outcome } = rawLogs(
        sessions[i % sessions.length],
        { id, follow: job.follow },
        { read: false },
      );
      stream.once("response", () => started++);
      outcome.then(() => started++);
    }
    const deadline = Date.now() + 60_000;
    while (started < count && Date.now() < deadline) await delay(50);
    // Let the server write what it will into the closed windows.
    await delay(2_000);
    const rss = rssBytes(pid);
    for (const session of sessions) dropSession(session);
    return { perStream: (rss - before) / count, rss };
  } finally {
    await server.stop("SIGKILL");
  }
}
