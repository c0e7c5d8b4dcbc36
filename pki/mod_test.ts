import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import assert from "node:assert/strict";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import tls from "node:tls";
import { parseExpiry, writeDevCerts, writeTestCerts } from "./mod.ts";

const DAY = 86_400_000;
const TESTDATA = new URL("../tests/testdata/", import.meta.url).pathname;

async function load(dir: string, name: string): Promise<x509.X509Certificate> {
  return new x509.X509Certificate(
    await readFile(join(dir, `${name}.crt`), "utf8"),
  );
}

function ekus(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return ext ? [...ext.usages].map(String) : [];
}

function sans(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return ext ? ext.names.toJSON().map((n) => `${n.type}:${n.value}`) : [];
}

function isCa(cert: x509.X509Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

/** Imports the PEM key the way a TLS stack would, and checks it is P-256. */
async function assertP256Key(
  path: string,
  cert: x509.X509Certificate,
  options: { privateMode?: boolean } = { privateMode: true },
) {
  const pem = await readFile(path, "utf8");
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const der = x509.PemConverter.decodeFirst(pem);
  const key = await crypto.subtle.importKey(
    "pkcs8",
    der,
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign"],
  );
  assert.equal((key.algorithm as EcKeyAlgorithm).namedCurve, "P-256");
  // The key belongs to the certificate: a signature made with it verifies
  // with the certificate's public key.
  const data = new TextEncoder().encode("telejob");
  const sig = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    data,
  );
  const pub = await cert.publicKey.export(
    { name: "ECDSA", namedCurve: "P-256" },
    ["verify"],
  );
  assert.ok(
    await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      pub,
      sig,
      data,
    ),
    `${path} does not match its certificate`,
  );
  // git keeps no file modes but the executable bit, so a clone's committed
  // test keys are 0644; only freshly written keys must be private.
  if (options.privateMode) {
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  }
}

function assertAbout(actual: Date, expected: number, what: string) {
  assert.ok(
    Math.abs(actual.getTime() - expected) < 5 * 60_000,
    `${what}: ${actual.toISOString()} is not near ${
      new Date(expected).toISOString()
    }`,
  );
}

Deno.test("parseExpiry accepts the seed's certstrap style", () => {
  const from = new Date("2026-01-31T12:00:00Z");
  assert.equal(
    parseExpiry("1 day", from).toISOString(),
    "2026-02-01T12:00:00.000Z",
  );
  assert.equal(
    parseExpiry("90 days", from).toISOString(),
    "2026-05-01T12:00:00.000Z",
  );
  assert.equal(
    parseExpiry("10 years", from).toISOString(),
    "2036-01-31T12:00:00.000Z",
  );
  assert.equal(
    parseExpiry(" 1 year 2 months 3 days 4 hours ", from).toISOString(),
    "2027-04-03T16:00:00.000Z",
  );
  assert.equal(
    parseExpiry("2weeks", from).toISOString(),
    "2026-02-14T12:00:00.000Z",
  );
});

Deno.test("parseExpiry refuses what it cannot read, naming the value", () => {
  for (const bad of ["", "day", "5 fortnights", "1 day later", "-1 day"]) {
    assert.throws(
      () => parseExpiry(bad),
      (err: Error) =>
        err.message.startsWith(
          `Invalid certificate expiry ${JSON.stringify(bad)}:`,
        ),
      bad,
    );
  }
  assert.throws(() => parseExpiry("0 days"), /must be in the future/);
});

Deno.test("writeDevCerts writes the seed's set with its expiries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines: string[] = [];
    const start = Date.now();
    await writeDevCerts(dir, { log: (l) => lines.push(l) });
    assert.deepEqual((await readdir(dir)).sort(), [
      "client-ca.crt",
      "client-ca.key",
      "client1.crt",
      "client1.key",
      "client2.crt",
      "client2.key",
      "server-ca.crt",
      "server-ca.key",
      "server.crt",
      "server.key",
    ]);
    assert.equal(lines.length, 10);
    assert.equal(
      lines[0],
      `Created ${join(dir, "server-ca.crt")} (expiry: 10 years, CA)`,
    );

    const serverCa = await load(dir, "server-ca");
    const clientCa = await load(dir, "client-ca");
    for (const ca of [serverCa, clientCa]) {
      assert.ok(isCa(ca));
      assert.ok(await ca.isSelfSigned());
      assertAbout(
        ca.notAfter,
        parseExpiry("10 years", new Date(start)).getTime(),
        ca.subject,
      );
    }
    assert.equal(serverCa.subject, "CN=server-ca");
    assert.equal(clientCa.subject, "CN=client-ca");

    const server = await load(dir, "server");
    assert.equal(server.subject, "CN=server");
    assert.ok(!isCa(server));
    assert.ok(await server.verify({ publicKey: serverCa.publicKey }));
    assert.ok(!(await server.verify({ publicKey: clientCa.publicKey })));
    assert.deepEqual(ekus(server), [x509.ExtendedKeyUsage.serverAuth]);
    assert.deepEqual(sans(server), ["dns:localhost", "ip:127.0.0.1"]);
    assertAbout(server.notAfter, start + 90 * DAY, "server");
    await assertP256Key(join(dir, "server.key"), server);

    for (const name of ["client1", "client2"]) {
      const client = await load(dir, name);
      assert.equal(client.subject, `CN=${name}`);
      assert.equal(client.issuer, "CN=client-ca");
      assert.ok(await client.verify({ publicKey: clientCa.publicKey }));
      assert.ok(!(await client.verify({ publicKey: serverCa.publicKey })));
      assert.deepEqual(ekus(client), [x509.ExtendedKeyUsage.clientAuth]);
      assert.deepEqual(sans(client), ["dns:localhost", "ip:127.0.0.1"]);
      assertAbout(client.notAfter, start + DAY, name);
      assert.ok(client.notBefore.getTime() <= start);
      await assertP256Key(join(dir, `${name}.key`), client);
    }
    await assertP256Key(join(dir, "client-ca.key"), clientCa);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("writeDevCerts: expiry overrides every period, ip and domain the SANs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const start = Date.now();
    await writeDevCerts(dir, {
      expiry: "3 days",
      ip: "",
      domain: "example.test",
    });
    for (const name of ["server-ca", "client-ca", "server", "client1"]) {
      assertAbout((await load(dir, name)).notAfter, start + 3 * DAY, name);
    }
    assert.deepEqual(sans(await load(dir, "server")), ["dns:example.test"]);
    await assert.rejects(
      () => writeDevCerts(join(dir, "never"), { expiry: "soon" }),
      /Invalid certificate expiry "soon"/,
    );
    await assert.rejects(
      () => stat(join(dir, "never")),
      /NotFound|ENOENT|No such file/,
    );
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("writeTestCerts writes the odd certificates the TLS tests need", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTestCerts(dir);
    await checkTestSet(dir);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("the committed tests/testdata certificates are the test set", async () => {
  await checkTestSet(TESTDATA, { privateMode: false });
});

async function checkTestSet(
  dir: string,
  options: { privateMode: boolean } = { privateMode: true },
) {
  const now = Date.now();
  const clientCa = await load(dir, "client-ca");
  const otherCa = await load(dir, "other-ca");
  assert.ok(clientCa.notAfter.getTime() > now + 15 * 365 * DAY);
  for (const name of ["client1", "client2", "admin", "client-no-cn"]) {
    const c = await load(dir, name);
    assert.ok(await c.verify({ publicKey: clientCa.publicKey }), name);
    assert.deepEqual(ekus(c), [x509.ExtendedKeyUsage.clientAuth]);
    assert.ok(c.notAfter.getTime() > now + 15 * 365 * DAY, name);
    await assertP256Key(join(dir, `${name}.key`), c, options);
  }
  assert.equal((await load(dir, "admin")).subject, "CN=admin");
  assert.equal((await load(dir, "client-no-cn")).subject, "O=Telejob");

  const expired = await load(dir, "client-expired");
  assert.ok(
    await expired.verify({
      publicKey: clientCa.publicKey,
      signatureOnly: true,
    }),
  );
  assert.ok(expired.notAfter.getTime() < now);
  const early = await load(dir, "client-not-yet-valid");
  assert.ok(
    await early.verify({ publicKey: clientCa.publicKey, signatureOnly: true }),
  );
  assert.ok(early.notBefore.getTime() > now);

  const wrong = await load(dir, "client-wrong-ca");
  assert.equal(wrong.issuer, "CN=other-ca");
  assert.ok(await wrong.verify({ publicKey: otherCa.publicKey }));
  assert.ok(!(await wrong.verify({ publicKey: clientCa.publicKey })));

  const serverEku = await load(dir, "client-server-eku");
  assert.ok(await serverEku.verify({ publicKey: clientCa.publicKey }));
  assert.deepEqual(ekus(serverEku), [x509.ExtendedKeyUsage.serverAuth]);
}

/**
 * Real TLS 1.3 handshakes through node:tls (what grpc-js uses): a server that
 * requires a client certificate from client-ca accepts the good ones and
 * refuses the odd ones. Proves the certificates work in Deno's TLS stack.
 */
Deno.test("testdata certificates in real TLS 1.3 handshakes", async () => {
  const r = (name: string) => readFile(join(TESTDATA, name));
  const server = tls.createServer({
    key: await r("server.key"),
    cert: await r("server.crt"),
    ca: await r("client-ca.crt"),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  }, (socket) => {
    const peer = socket.getPeerCertificate();
    socket.end(`${peer.subject?.CN ?? "-"} ${socket.getProtocol()}`);
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const serverCa = await r("server-ca.crt");
  const handshake = async (name: string): Promise<string> => {
    const [key, cert] = await Promise.all([r(`${name}.key`), r(`${name}.crt`)]);
    return await new Promise((resolve) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: serverCa,
        key,
        cert,
      });
      let out = "";
      let failed = false;
      socket.on("data", (b) => out += b);
      socket.on("error", () => failed = true);
      socket.on("close", () => resolve(failed || out === "" ? "refused" : out));
    });
  };
  try {
    assert.equal(await handshake("client1"), "client1 TLSv1.3");
    assert.equal(await handshake("admin"), "admin TLSv1.3");
    // TLS itself accepts a certificate without a CN: the server must refuse it.
    assert.equal(await handshake("client-no-cn"), "- TLSv1.3");
    for (
      const name of [
        "client-expired",
        "client-not-yet-valid",
        "client-wrong-ca",
        "client-server-eku",
      ]
    ) {
      assert.equal(await handshake(name), "refused", name);
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
