import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { join } from "node:path";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadTlsMaterial } from "../server/pem.ts";
import { createServerCredentials } from "../server/tls.ts";
import { hookHttp2Servers } from "./http2_hooks.ts";

const TESTDATA = fileURLToPath(
  new URL("../tests/testdata", import.meta.url),
);
const file = (name: string): Buffer =>
  Buffer.from(Deno.readFileSync(join(TESTDATA, name)));

Deno.test("hookHttp2Servers runs each hook on grpc-js's own http2 server and pins the peer certificate", async () => {
  const server = new grpc.Server();
  const seen: string[] = [];
  let secured: TLSSocket | undefined;
  const session = Promise.withResolvers<void>();
  hookHttp2Servers(server, {
    connection: (_socket: Socket) => seen.push("connection"),
    secureConnection: (socket) => {
      seen.push("secureConnection");
      secured = socket;
    },
    session: () => {
      seen.push("session");
      session.resolve();
    },
  });
  const material = await loadTlsMaterial({
    serverCert: join(TESTDATA, "server.crt"),
    serverKey: join(TESTDATA, "server.key"),
    clientCaCert: join(TESTDATA, "client-ca.crt"),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      createServerCredentials(material),
      (error, port) => error ? reject(error) : resolve(port),
    )
  );
  const client = http2.connect(`https://127.0.0.1:${port}`, {
    servername: "localhost",
    ca: file("server-ca.crt"),
    cert: file("client1.crt"),
    key: file("client1.key"),
  });
  client.on("error", () => {});
  try {
    await session.promise;
    assert.deepEqual(seen, ["connection", "secureConnection", "session"]);
    assert.ok(secured);
    // Pinned before the secureConnection hook ran: the same object each time.
    const first = secured.getPeerCertificate();
    assert.equal(first.subject.CN, "client1");
    assert.equal(secured.getPeerCertificate(), first);
  } finally {
    const closed = new Promise((resolve) => client.once("close", resolve));
    client.destroy();
    await closed;
    server.forceShutdown();
  }
});

Deno.test("hookHttp2Servers refuses a grpc-js without createHttp2Server instead of skipping the protections", () => {
  const server = new grpc.Server();
  (server as unknown as { createHttp2Server?: unknown }).createHttp2Server =
    undefined;
  assert.throws(
    () => hookHttp2Servers(server, {}),
    /grpc-js version is not supported; use the version pinned in deno\.json/,
  );
});
