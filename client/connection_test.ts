import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { join } from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { createCa, createLeaf, type Issued, writeIssued } from "../pki/mod.ts";
import {
  connect,
  describeError,
  loadClientTls,
  parseAddress,
} from "./connection.ts";
import { CliError } from "./errors.ts";
import { TelejobService } from "../proto/gen/telejob/v1/telejob.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata/", import.meta.url));
const td = (name: string) => join(TESTDATA, name);
const client1 = {
  address: "localhost:1",
  clientCert: td("client1.crt"),
  clientKey: td("client1.key"),
  serverCaCert: td("server-ca.crt"),
};

async function rejectsWith(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CliError, String(err));
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("loadClientTls reads the files and names the user", async () => {
  const tls = await loadClientTls(client1);
  assert.equal(tls.user, "client1");
  assert.ok(tls.ca && tls.cert && tls.key);
  const noCa = await loadClientTls({ ...client1, serverCaCert: undefined });
  assert.equal(noCa.ca, undefined);
});

Deno.test("loadClientTls: each local problem is one line naming the file", async () => {
  await rejectsWith(
    loadClientTls({ ...client1, clientCert: "/nonexistent.crt" }),
    /^Cannot read the client certificate "\/nonexistent.crt" \(no such file\): pass --client-cert or set \$TELEJOB_CLIENT_CERT$/,
  );
  await rejectsWith(
    loadClientTls({ ...client1, clientKey: "/nonexistent.key" }),
    /^Cannot read the client key .*: pass --client-key or set \$TELEJOB_CLIENT_KEY$/,
  );
  await rejectsWith(
    loadClientTls({ ...client1, serverCaCert: "/nonexistent-ca.crt" }),
    /^Cannot read the server CA certificate .*--server-ca-cert/,
  );
  await rejectsWith(
    loadClientTls({ ...client1, clientCert: td("client1.key") }),
    /is not a PEM certificate: pass the .crt file with --client-cert$/,
  );
  await rejectsWith(
    loadClientTls({ ...client1, clientKey: td("client1.crt") }),
    /is not a PEM private key/,
  );
  await rejectsWith(
    loadClientTls({ ...client1, clientKey: td("client2.key") }),
    /^The client key ".*client2.key" does not belong to the certificate ".*client1.crt"/,
  );
  await rejectsWith(
    loadClientTls({
      ...client1,
      clientCert: td("client-expired.crt"),
      clientKey: td("client-expired.key"),
    }),
    /expired on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: get a new one/,
  );
  await rejectsWith(
    loadClientTls({
      ...client1,
      clientCert: td("client-not-yet-valid.crt"),
      clientKey: td("client-not-yet-valid.key"),
    }),
    /is not valid before .*: check this machine's clock/,
  );
  await rejectsWith(
    loadClientTls({
      ...client1,
      clientCert: td("client-no-cn.crt"),
      clientKey: td("client-no-cn.key"),
    }),
    /has no common name/,
  );
  // The validity check uses the clock it is given.
  await rejectsWith(
    loadClientTls({ ...client1, now: new Date("2099-01-01T00:00:00Z") }),
    /expired on/,
  );
});

Deno.test("parseAddress takes HOST:PORT, IPv6 in brackets", () => {
  assert.deepEqual(parseAddress("localhost:8443"), {
    host: "localhost",
    port: 8443,
  });
  assert.deepEqual(parseAddress("127.0.0.1:1"), { host: "127.0.0.1", port: 1 });
  assert.deepEqual(parseAddress("[::1]:8443"), { host: "::1", port: 8443 });
  for (
    const bad of [
      "localhost",
      ":8443",
      "host:0",
      "host:70000",
      "a b:1",
      "http://x:1",
    ]
  ) {
    assert.throws(
      () => parseAddress(bad),
      new RegExp(
        `^CliError: Invalid server address ${
          JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
        }: use HOST:PORT`,
      ),
      bad,
    );
  }
});

Deno.test("describeError maps gRPC failures to one actionable line", () => {
  const ctx = { address: "h:1", clientCert: "c.crt", jobId: "7" };
  const e = (code: grpc.status, details: string) => ({ code, details });
  const unavailable = (last: string) =>
    e(
      grpc.status.UNAVAILABLE,
      `No connection established. Last error: ${last}. Resolution note: `,
    );
  const cases: [unknown, RegExp][] = [
    [
      unavailable("Error: connect ECONNREFUSED 127.0.0.1:1"),
      /^Cannot reach telejob-server at h:1 \(connection refused\)/,
    ],
    [
      unavailable("Name resolution failed for target dns:x:1"),
      /^Cannot resolve the host of h:1/,
    ],
    [
      unavailable("Error: unable to get local issuer certificate"),
      /^Cannot trust the certificate .*--server-ca-cert/,
    ],
    [
      unavailable(
        "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames",
      ),
      /not valid for h:1/,
    ],
    [
      unavailable("write EPIPE (2026-01-01T00:00:00Z)"),
      /^The server at h:1 refused the TLS handshake: check that the client certificate "c.crt"/,
    ],
    [
      unavailable("received fatal alert: CertificateRequired"),
      /refused the TLS handshake/,
    ],
    [
      e(grpc.status.UNAVAILABLE, "Server shutting down; retry when it is back"),
      /^The server at h:1 is shutting down and ended the call: run the command again once it is back$/,
    ],
    [
      e(grpc.status.UNAVAILABLE, "Connection dropped"),
      /^Lost the connection to telejob-server at h:1 \(Connection dropped\)/,
    ],
    [
      e(grpc.status.NOT_FOUND, "job 7 not found"),
      /^No job "7": run "telejob list"/,
    ],
    [
      e(grpc.status.INVALID_ARGUMENT, "limits.cpu: at most 2"),
      /^limits\.cpu: at most 2$/,
    ],
    [
      e(grpc.status.UNAUTHENTICATED, "no common name"),
      /^The server refused the client certificate "c.crt": no common name$/,
    ],
    [
      e(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"),
      /^No answer from telejob-server at h:1/,
    ],
    [
      e(grpc.status.INTERNAL, "boom"),
      /^The server at h:1 failed: boom; its log has the details$/,
    ],
    [new CliError("as is"), /^as is$/],
    [new Error("weird"), /^Unexpected error: weird$/],
  ];
  for (const [err, pattern] of cases) {
    assert.match(describeError(err, ctx), pattern);
  }
});

/**
 * Real gRPC over real mutual TLS, in process: an IP address as the target
 * works (Deno's node:tls refuses an IP as SNI, which the credentials work
 * around) and is still checked against the server certificate's SANs.
 */
Deno.test("connect: IP targets verify the certificate's IP SAN", async () => {
  const dir = await Deno.makeTempDir();
  const year = new Date(Date.now() + 365 * 86_400_000);
  const serverCa = await createCa("server-ca", { notAfter: year });
  const clientCa = await createCa("client-ca", { notAfter: year });
  const user = await createLeaf("alice", clientCa, {
    usage: "client",
    commonName: "alice",
    notAfter: year,
  });
  const write = async (i: Issued) => {
    const [crt, key] = await writeIssued(dir, i);
    return { crt, key };
  };
  const servers: grpc.Server[] = [];
  const serve = async (leaf: Issued): Promise<number> => {
    const files = await write(leaf);
    const server = new grpc.Server();
    server.addService(TelejobService, {
      list: (
        _call: unknown,
        cb: (e: null, r: { jobs: never[]; nextPageToken: string }) => void,
      ) => cb(null, { jobs: [], nextPageToken: "" }),
    });
    servers.push(server);
    const credentials = grpc.ServerCredentials.createSsl(
      Buffer.from(await Deno.readFile((await write(clientCa)).crt)),
      [{
        private_key: Buffer.from(await Deno.readFile(files.key)),
        cert_chain: Buffer.from(await Deno.readFile(files.crt)),
      }],
      true,
    );
    return await new Promise((resolve, reject) =>
      server.bindAsync(
        "127.0.0.1:0",
        credentials,
        (err, port) => err ? reject(err) : resolve(port),
      )
    );
  };
  try {
    const both = await serve(
      await createLeaf("server-both", serverCa, {
        usage: "server",
        commonName: "server",
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"],
        notAfter: year,
      }),
    );
    const dnsOnly = await serve(
      await createLeaf("server-dns", serverCa, {
        usage: "server",
        commonName: "server",
        dnsNames: ["localhost"],
        notAfter: year,
      }),
    );
    const u = await write(user);
    const ca = (await write(serverCa)).crt;
    const list = async (address: string) => {
      const conn = await connect({
        address,
        clientCert: u.crt,
        clientKey: u.key,
        serverCaCert: ca,
      });
      try {
        return await conn.list({ timeoutMs: 10_000 });
      } finally {
        conn.close();
      }
    };
    assert.deepEqual(await list(`127.0.0.1:${both}`), []);
    assert.deepEqual(await list(`localhost:${both}`), []);
    assert.deepEqual(await list(`localhost:${dnsOnly}`), []);
    await assert.rejects(list(`127.0.0.1:${dnsOnly}`), (err: unknown) => {
      assert.match(
        describeError(err, { address: "a", clientCert: "c" }),
        /not valid for a: use an address it names/,
      );
      return true;
    });
  } finally {
    for (const s of servers) s.forceShutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect: a server that offers only TLS 1.2 is refused", async () => {
  const r = (name: string) => Deno.readFileSync(td(name));
  const server = tls.createServer({
    key: Buffer.from(r("server.key")),
    cert: Buffer.from(r("server.crt")),
    ca: Buffer.from(r("client-ca.crt")),
    requestCert: true,
    maxVersion: "TLSv1.2",
    ALPNProtocols: ["h2"],
  }, (socket) => socket.destroy());
  const refused: string[] = [];
  server.on("tlsClientError", (err) => refused.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const conn = await connect({ ...client1, address: `localhost:${port}` });
  try {
    await assert.rejects(conn.list({ timeoutMs: 10_000 }), (err: unknown) => {
      assert.equal(
        describeError(err, { address: "a:1", clientCert: "c" }),
        "The server at a:1 does not speak TLS 1.3, which telejob requires: point --address at a telejob-server",
      );
      return true;
    });
    // The server saw the handshake fail: our client offered no TLS 1.2.
    assert.equal(refused.length > 0, true);
  } finally {
    conn.close();
    await new Promise((resolve) => server.close(resolve));
  }
});
