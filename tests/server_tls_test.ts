/**
 * Mutual TLS against the real server process: every kind of bad client is
 * refused, and the server keeps serving a good client after each.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { TelejobClient } from "../proto/gen/telejob/v1/telejob.ts";
import {
  call,
  clientFor,
  type ServerProcess,
  startServer,
  testdata,
} from "./server_harness.ts";

async function listAs(
  server: ServerProcess,
  client: TelejobClient,
): Promise<string> {
  try {
    await call(client, "list", {}, 10_000);
    return "OK";
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code];
  } finally {
    client.close();
    assert.ok(server.alive(), "the server died");
  }
}

async function goodClientWorks(server: ServerProcess): Promise<void> {
  assert.equal(await listAs(server, clientFor(server, "client1")), "OK");
}

Deno.test("mutual TLS: bad clients are refused and good ones keep working", async (t) => {
  const server = await startServer();
  try {
    await t.step(
      "a client1 certificate is accepted as user client1",
      async () => {
        await goodClientWorks(server);
        const from = server.lines.length;
        await listAs(server, clientFor(server, "client1"));
        const rpc = await server.waitForLog((e) => e.method === "List", from);
        assert.equal(rpc.user, "client1");
      },
    );

    // Each of these fails the TLS handshake (rustls refuses the chain,
    // dates or key usage) or is closed by our own check right after it.
    const refused: [string, string][] = [
      ["no client certificate", ""],
      ["a certificate from another CA", "client-wrong-ca"],
      ["an expired certificate", "client-expired"],
      ["a not yet valid certificate", "client-not-yet-valid"],
      ["a certificate without common name", "client-no-cn"],
      ["a server-EKU certificate from the client CA", "client-server-eku"],
    ];
    for (const [what, name] of refused) {
      await t.step(`${what} is refused`, async () => {
        const client = name === ""
          ? clientFor(server)
          : clientFor(server, name);
        assert.equal(await listAs(server, client), "UNAVAILABLE");
        await goodClientWorks(server);
      });
    }

    await t.step(
      "the no-CN refusal is ours, and logged with its reason",
      async () => {
        const from = server.lines.length;
        await listAs(server, clientFor(server, "client-no-cn"));
        // Log lines arrive on their own time: wait for it.
        const refusal = await server.waitForLog(
          (e) => e.event === "connection_refused",
          from,
        );
        assert.equal(refusal.reason, "client certificate has no common name");
      },
    );

    await t.step(
      "the server's own certificate as a client certificate is refused",
      async () => {
        const client = new TelejobClient(
          `localhost:${server.port}`,
          grpc.credentials.createSsl(
            Buffer.from(testdata("server-ca.crt")),
            Buffer.from(testdata("server.key")),
            Buffer.from(testdata("server.crt")),
          ),
          { "grpc.use_local_subchannel_pool": 1 },
        );
        assert.equal(await listAs(server, client), "UNAVAILABLE");
        await goodClientWorks(server);
      },
    );

    await t.step(
      "a TLS 1.2 client is refused, a TLS 1.3 one accepted",
      async () => {
        const handshake = (maxVersion: tls.SecureVersion) =>
          new Promise<string>((resolve) => {
            const socket = tls.connect({
              host: "127.0.0.1",
              port: server.port,
              servername: "localhost",
              ca: Buffer.from(testdata("server-ca.crt")),
              cert: Buffer.from(testdata("client1.crt")),
              key: Buffer.from(testdata("client1.key")),
              ALPNProtocols: ["h2"],
              minVersion: "TLSv1.2",
              maxVersion,
            });
            let result = "closed";
            const guard = setTimeout(() => socket.destroy(), 10_000);
            socket.on("secureConnect", () => {
              result = `connected ${socket.getProtocol()}`;
              // destroy, not end: the server keeps its HTTP/2 side open.
              socket.destroy();
            });
            socket.on("error", (error) => (result = `error ${error.message}`));
            socket.on("close", () => {
              clearTimeout(guard);
              resolve(result);
            });
          });
        const old = await handshake("TLSv1.2");
        assert.ok(!old.startsWith("connected"), `TLS 1.2 was accepted: ${old}`);
        assert.equal(await handshake("TLSv1.3"), "connected TLSv1.3");
        await goodClientWorks(server);
      },
    );

    await t.step("plain text HTTP/2 is refused", async () => {
      const client = new TelejobClient(
        `localhost:${server.port}`,
        grpc.credentials.createInsecure(),
        { "grpc.use_local_subchannel_pool": 1 },
      );
      assert.equal(await listAs(server, client), "UNAVAILABLE");
      await goodClientWorks(server);
    });
  } finally {
    const status = await server.stop();
    assert.equal(status.code, 0);
  }
});
