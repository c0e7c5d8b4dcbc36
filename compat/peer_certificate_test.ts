import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { pinPeerCertificate } from "./peer_certificate.ts";

const TESTDATA = fileURLToPath(
  new URL("../tests/testdata", import.meta.url),
);

function der(name: string): Uint8Array {
  return new Uint8Array(
    new X509Certificate(Deno.readTextFileSync(join(TESTDATA, `${name}.crt`)))
      .raw,
  );
}

Deno.test("pinPeerCertificate reads a connection's client certificate once", async () => {
  const file = (name: string): Buffer =>
    Buffer.from(Deno.readFileSync(join(TESTDATA, name)));
  const server = createServer({
    cert: file("server.crt"),
    key: file("server.key"),
    ca: file("client-ca.crt"),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  const accepted = new Promise<TLSSocket>((resolve) =>
    server.once("secureConnection", resolve)
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client = connect({
    host: "127.0.0.1",
    port,
    servername: "localhost",
    ca: file("server-ca.crt"),
    cert: file("client1.crt"),
    key: file("client1.key"),
  });
  const socket = await accepted;
  try {
    const unpinned = socket.getPeerCertificate();
    assert.notEqual(socket.getPeerCertificate(), unpinned);
    pinPeerCertificate(socket);
    const first = socket.getPeerCertificate();
    assert.equal(socket.getPeerCertificate(), first);
    assert.deepEqual(new Uint8Array(first.raw), der("client1"));
    assert.equal(first.subject.CN, "client1");
    // The detailed form is not pinned.
    assert.notEqual(socket.getPeerCertificate(true), first);
  } finally {
    const closed = new Promise((resolve) => client.once("close", resolve));
    client.destroy();
    socket.destroy();
    await closed;
    await new Promise((resolve) => server.close(resolve));
  }
});
