import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { TelejobClient } from "../proto/gen/telejob/v1/telejob.ts";
import { startTelejobServer } from "./app.ts";
import type { JobInfo } from "./jobs/mod.ts";
import { createLogger } from "./log.ts";
import type { Engine } from "./service.ts";
import { loadTlsMaterial } from "./pem.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata", import.meta.url));
const read = (name: string) =>
  Buffer.from(Deno.readFileSync(join(TESTDATA, name)));

// The engine is replaced by a recorder here: this test is about the wiring
// (who the service says the caller is); tests/server_api_test.ts runs the
// real engine in the real server process.
function recordingEngine(calls: string[]): Engine {
  return {
    list(user: string): Promise<JobInfo[]> {
      calls.push(`list ${user}`);
      return Promise.resolve([]);
    },
    start: () => Promise.reject(new Error("unused")),
    stop: () => Promise.reject(new Error("unused")),
    status: () => Promise.reject(new Error("unused")),
    logs: () => {
      throw new Error("unused");
    },
  };
}

Deno.test("startTelejobServer serves the certificate's CN as the user and logs the call", async () => {
  const calls: string[] = [];
  const lines: string[] = [];
  const server = await startTelejobServer(recordingEngine(calls), {
    address: { host: "127.0.0.1", port: 0 },
    tls: await loadTlsMaterial({
      serverCert: join(TESTDATA, "server.crt"),
      serverKey: join(TESTDATA, "server.key"),
      clientCaCert: join(TESTDATA, "client-ca.crt"),
    }),
    logger: createLogger({ write: (line) => lines.push(line) }),
  });
  const client = new TelejobClient(
    `localhost:${server.port}`,
    grpc.credentials.createSsl(
      read("server-ca.crt"),
      read("client2.key"),
      read("client2.crt"),
    ),
  );
  try {
    const jobs = await new Promise((resolve, reject) =>
      client.list(
        { pageSize: 0, pageToken: "", view: 0 },
        (error, response) => error ? reject(error) : resolve(response.jobs),
      )
    );
    assert.deepEqual(jobs, []);
    assert.deepEqual(calls, ["list client2"]);
    const rpc = lines.map((l) => JSON.parse(l)).find((e) =>
      e.method === "List"
    );
    assert.equal(rpc.user, "client2");
    assert.equal(rpc.outcome, "OK");
  } finally {
    client.close();
    await server.shutdown({ timeoutMs: 2_000 });
  }
});

Deno.test("shutdown ends followers, waits for a call in flight, then closes the connection", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inCall = new Promise<void>((resolve) => (entered = resolve));
  const engine: Engine = {
    ...recordingEngine([]),
    async list(): Promise<JobInfo[]> {
      entered();
      await released;
      return [];
    },
    // A follower that never ends by itself.
    async *logs(_user, _id, options = {}): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode("x");
      await new Promise((resolve) =>
        options.signal?.addEventListener("abort", resolve, { once: true })
      );
    },
  };
  const server = await startTelejobServer(engine, {
    address: { host: "127.0.0.1", port: 0 },
    tls: await loadTlsMaterial({
      serverCert: join(TESTDATA, "server.crt"),
      serverKey: join(TESTDATA, "server.key"),
      clientCaCert: join(TESTDATA, "client-ca.crt"),
    }),
    logger: createLogger({ write: () => {} }),
  });
  const client = new TelejobClient(
    `localhost:${server.port}`,
    grpc.credentials.createSsl(
      read("server-ca.crt"),
      read("client2.key"),
      read("client2.crt"),
    ),
  );
  const list = () =>
    new Promise<unknown>((resolve, reject) =>
      client.list(
        { pageSize: 0, pageToken: "", view: 0 },
        (error, response) => error ? reject(error) : resolve(response.jobs),
      )
    );
  try {
    const first = list();
    await inCall;
    const stopping = server.shutdown({ timeoutMs: 10_000 });
    // The connection stays open while the call runs; a follower started on
    // it now is ended at once instead of holding the shutdown up.
    const follow = await new Promise<grpc.ServiceError | undefined>(
      (resolve) => {
        const stream = client.logs({ id: "1", follow: true, offset: 0 });
        stream.on("data", () => {});
        stream.on("error", resolve);
        stream.on("end", () => resolve(undefined));
      },
    );
    assert.equal(follow?.code, grpc.status.UNAVAILABLE);
    assert.match(follow.details, /shutting down/);
    release();
    assert.deepEqual(await first, [], "the call in flight completed");
    await stopping;
    const error = await list().then(() => undefined, (e) => e);
    assert.equal(error?.code, grpc.status.UNAVAILABLE);
  } finally {
    release();
    client.close();
    await server.shutdown();
  }
});
