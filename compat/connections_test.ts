import assert from "node:assert/strict";
import http2 from "node:http2";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TLSSocket } from "node:tls";
import { ConnectionTracker } from "./connections.ts";

const TESTDATA = fileURLToPath(
  new URL("../tests/testdata", import.meta.url),
);
const read = (name: string) => Deno.readTextFileSync(join(TESTDATA, name));

/**
 * A real HTTP/2 server over TLS whose connections a tracker follows, as
 * app.ts wires it. `/hold` answers only when `release()` is called.
 */
async function serve(tracker: ConnectionTracker) {
  const server = http2.createSecureServer({
    key: read("server.key"),
    cert: read("server.crt"),
  });
  server.prependListener(
    "secureConnection",
    (socket: TLSSocket) => tracker.addSocket(socket),
  );
  server.prependListener("session", (session) => tracker.addSession(session));
  const held: http2.ServerHttp2Stream[] = [];
  let onHeld: (() => void) | undefined;
  server.on("stream", (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) => {
    if (headers[":path"] === "/hold") {
      held.push(stream);
      onHeld?.();
      return;
    }
    stream.respond({ ":status": 200 });
    stream.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    /** Resolves once the server holds a /hold stream. */
    held(): Promise<void> {
      if (held.length > 0) return Promise.resolve();
      return new Promise((resolve) => (onHeld = resolve));
    },
    release(): void {
      for (const stream of held.splice(0)) {
        if (stream.destroyed) continue;
        stream.respond({ ":status": 200 });
        stream.end("late");
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A client session that records whether it ever saw GOAWAY. */
function connect(port: number) {
  const session = http2.connect(`https://localhost:${port}`, {
    ca: read("server-ca.crt"),
  });
  const seen = { goaway: false, closed: false };
  session.on("goaway", () => (seen.goaway = true));
  session.on("error", () => {});
  const closed = new Promise<void>((resolve) =>
    session.once("close", () => {
      seen.closed = true;
      resolve();
    })
  );
  const request = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const req = session.request({ ":path": path });
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => resolve(body));
      req.on("error", reject);
      req.end();
    });
  return { session, seen, closed, request };
}

Deno.test("drain ends idle connections after clientCloseMs, without GOAWAY", async () => {
  const tracker = new ConnectionTracker();
  const server = await serve(tracker);
  const client = connect(server.port);
  try {
    assert.equal(await client.request("/"), "ok");
    assert.equal(tracker.size, 1);
    const result = await tracker.drain({ clientCloseMs: 10 });
    await client.closed;
    assert.deepEqual(result, { connections: 1, ended: 1, forced: 0 });
    assert.equal(client.seen.goaway, false, "the client received GOAWAY");
    assert.equal(tracker.size, 0);
    assert.equal(tracker.draining, true);
  } finally {
    client.session.destroy();
    await server.close();
  }
});

Deno.test("drain leaves an idle connection to its client for clientCloseMs", async () => {
  const tracker = new ConnectionTracker();
  const server = await serve(tracker);
  const client = connect(server.port);
  try {
    assert.equal(await client.request("/"), "ok");
    const draining = tracker.drain({ clientCloseMs: 60_000 });
    client.session.close();
    const result = await draining;
    assert.deepEqual(result, { connections: 1, ended: 0, forced: 0 });
  } finally {
    client.session.destroy();
    await server.close();
  }
});

Deno.test("drain waits for a call in flight before it ends the connection", async () => {
  const tracker = new ConnectionTracker();
  const server = await serve(tracker);
  const client = connect(server.port);
  try {
    const late = client.request("/hold");
    await server.held();
    const draining = tracker.drain({ clientCloseMs: 0 });
    // Some turns of the event loop, in which an idle connection would end.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(client.seen.closed, false, "ended with a call in flight");
    server.release();
    assert.equal(await late, "late");
    const result = await draining;
    assert.deepEqual(result, { connections: 1, ended: 1, forced: 0 });
    assert.equal(client.seen.goaway, false, "the client received GOAWAY");
  } finally {
    client.session.destroy();
    await server.close();
  }
});

Deno.test("drain destroys a connection whose call outlives timeoutMs", async () => {
  const tracker = new ConnectionTracker();
  const server = await serve(tracker);
  const client = connect(server.port);
  try {
    const late = client.request("/hold").catch((error) => error);
    await server.held();
    const result = await tracker.drain({ clientCloseMs: 10, timeoutMs: 200 });
    assert.deepEqual(result, { connections: 1, ended: 0, forced: 1 });
    await client.closed;
    // Deno ends the request without an error or with one; never answered.
    assert.notEqual(await late, "late");
    assert.equal(client.seen.goaway, false);
  } finally {
    server.release();
    client.session.destroy();
    await server.close();
  }
});
