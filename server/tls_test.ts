import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import {
  checkDenoVersion,
  ClientVerifier,
  loadTlsMaterial,
  pinPeerCertificate,
  TlsConfigError,
  verifyClientCertificate,
} from "./tls.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata", import.meta.url));

function cert(name: string): X509Certificate {
  return new X509Certificate(
    Deno.readTextFileSync(join(TESTDATA, `${name}.crt`)),
  );
}
function der(name: string): Uint8Array {
  return new Uint8Array(cert(name).raw);
}
const cas = [cert("client-ca")];

Deno.test("verifyClientCertificate accepts a client certificate and names its user", () => {
  for (const name of ["client1", "admin"]) {
    const verdict = verifyClientCertificate(der(name), cas);
    assert.ok(verdict.ok);
    assert.equal(verdict.user, name);
    // Long streams end when the certificate does (service.ts).
    assert.ok(verdict.notAfter instanceof Date);
  }
});

Deno.test("verifyClientCertificate refuses each bad certificate itself, whatever TLS did", () => {
  const reason = (name: string): string => {
    const verdict = verifyClientCertificate(der(name), cas);
    assert.ok(!verdict.ok, `${name} was accepted`);
    return verdict.reason;
  };
  assert.match(reason("client-wrong-ca"), /not issued by the client CA/);
  assert.match(reason("server"), /not issued by the client CA/);
  assert.match(reason("client-expired"), /expired/);
  assert.match(reason("client-not-yet-valid"), /not yet valid/);
  assert.match(reason("client-no-cn"), /no common name/);
  assert.match(reason("client-server-eku"), /client authentication/);
  assert.match(reason("client-ca"), /client authentication/);
});

Deno.test("verifyClientCertificate checks the dates against the given clock", () => {
  const c1 = cert("client1");
  const before = new Date(Date.parse(c1.validFrom) - 1000);
  const after = new Date(Date.parse(c1.validTo) + 1000);
  assert.match(
    JSON.stringify(
      verifyClientCertificate(der("client1"), cas, { now: before }),
    ),
    /not yet valid/,
  );
  const verifier = new ClientVerifier(cas);
  assert.ok(verifier.verify(der("client1")).ok);
  // Cached, but the clock still counts.
  assert.match(
    JSON.stringify(verifier.verify(der("client1"), { now: after })),
    /expired/,
  );
  assert.ok(!verifier.verify(new Uint8Array([1, 2, 3])).ok);
});

Deno.test("checkDenoVersion refuses Deno before 2.8.1", () => {
  assert.match(checkDenoVersion("2.8.0") ?? "", /2\.8\.0 is too old.*2\.8\.1/);
  assert.match(checkDenoVersion("1.46.3") ?? "", /too old/);
  assert.equal(checkDenoVersion("2.8.1"), undefined);
  assert.equal(checkDenoVersion("2.9.6"), undefined);
  assert.equal(checkDenoVersion("3.0.0"), undefined);
  assert.equal(checkDenoVersion(Deno.version.deno), undefined);
});

Deno.test("loadTlsMaterial loads the test files and names the flag at fault", async () => {
  const material = await loadTlsMaterial({
    serverCert: join(TESTDATA, "server.crt"),
    serverKey: join(TESTDATA, "server.key"),
    clientCaCert: join(TESTDATA, "client-ca.crt"),
  });
  assert.equal(material.clientCaCerts.length, 1);
  await assert.rejects(
    loadTlsMaterial({
      serverCert: join(TESTDATA, "server.crt"),
      serverKey: join(TESTDATA, "server.key"),
      clientCaCert: join(TESTDATA, "client1.key"),
    }),
    (error) =>
      error instanceof TlsConfigError &&
      /--client-ca-cert .*no PEM certificate/.test(error.message),
  );
});

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
