import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import assert from "node:assert/strict";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CertSetError,
  type CertSetOptions,
  DEFAULT_USERS,
  loadIssued,
  writeCertSet,
} from "./cert_set.ts";

const DAY = 86_400_000;

async function cert(dir: string, name: string): Promise<x509.X509Certificate> {
  return new x509.X509Certificate(
    await readFile(join(dir, `${name}.crt`), "utf8"),
  );
}

function names(c: x509.X509Certificate): string[] {
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.toJSON().map((n) => n.value) : [];
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "telejob-pki-" });
  try {
    await fn(join(root, "pki"));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

Deno.test("writeCertSet makes the set deno task certs makes, keys 0600, dir 0700", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    const result = await writeCertSet(dir, { log: (l) => lines.push(l) });
    assert.deepEqual(result.created, { serverCa: true, clientCa: true });
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ["server-ca", "client-ca", "server", ...DEFAULT_USERS]
        .flatMap((name) => [`${name}.crt`, `${name}.key`]).sort(),
    );
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    for (const file of await readdir(dir)) {
      if (file.endsWith(".key")) {
        assert.equal((await stat(join(dir, file))).mode & 0o777, 0o600, file);
      }
    }
    const server = await cert(dir, "server");
    assert.deepEqual(names(server), ["localhost", "127.0.0.1"]);
    assert.ok(await server.verify({ publicKey: await cert(dir, "server-ca") }));
    const client1 = await cert(dir, "client1");
    assert.equal(client1.subject, "CN=client1");
    assert.ok(
      await client1.verify({ publicKey: await cert(dir, "client-ca") }),
    );
    assert.ok(Math.abs(client1.notAfter.getTime() - Date.now() - DAY) < 60_000);
    assert.ok(
      Math.abs(server.notAfter.getTime() - Date.now() - 90 * DAY) < 60_000,
    );
    assert.ok(lines.some((l) => l.startsWith(`Created ${dir}/server.crt`)));
  });
});

Deno.test("writeCertSet run again keeps the CAs and issues new certificates from them", async () => {
  await withDir(async (dir) => {
    await writeCertSet(dir, {
      users: ["admin"],
      serverNames: ["telejob.example.com", "10.1.2.3"],
    });
    const serverCa = await readFile(join(dir, "server-ca.crt"), "utf8");
    const clientCa = await readFile(join(dir, "client-ca.crt"), "utf8");
    const oldServer = await readFile(join(dir, "server.crt"), "utf8");
    const oldAdmin = await readFile(join(dir, "admin.crt"), "utf8");

    const result = await writeCertSet(dir, { users: ["bob"], days: 30 });
    assert.deepEqual(result.created, { serverCa: false, clientCa: false });
    assert.deepEqual(result.users, ["bob"]);
    assert.equal(await readFile(join(dir, "server-ca.crt"), "utf8"), serverCa);
    assert.equal(await readFile(join(dir, "client-ca.crt"), "utf8"), clientCa);
    // No default users on a renewal: only bob is new, admin is untouched.
    assert.equal(await readFile(join(dir, "admin.crt"), "utf8"), oldAdmin);
    await assert.rejects(stat(join(dir, "client1.crt")));
    const bob = await cert(dir, "bob");
    assert.ok(await bob.verify({ publicKey: await cert(dir, "client-ca") }));
    assert.ok(
      Math.abs(bob.notAfter.getTime() - Date.now() - 30 * DAY) < 60_000,
    );
    // The server certificate is renewed with the names it had.
    const server = await cert(dir, "server");
    assert.notEqual(await readFile(join(dir, "server.crt"), "utf8"), oldServer);
    assert.deepEqual(names(server), ["telejob.example.com", "10.1.2.3"]);
    assert.ok(await server.verify({ publicKey: await cert(dir, "server-ca") }));

    const renamed = await writeCertSet(dir, { serverNames: ["other.example"] });
    assert.deepEqual(renamed.serverNames, ["other.example"]);
    assert.deepEqual(names(await cert(dir, "server")), ["other.example"]);
  });
});

Deno.test("writeCertSet refuses a broken existing set before writing anything", async () => {
  await withDir(async (dir) => {
    await writeCertSet(dir, { users: ["admin"] });
    // A key that is not the certificate's.
    await writeFile(
      join(dir, "client-ca.key"),
      await readFile(join(dir, "server-ca.key")),
    );
    const before = await readFile(join(dir, "server.crt"), "utf8");
    await assert.rejects(
      writeCertSet(dir, { users: ["bob"] }),
      (e: Error) =>
        e instanceof CertSetError &&
        e.message.includes("client-ca.key is not the key of"),
    );
    assert.equal(await readFile(join(dir, "server.crt"), "utf8"), before);
    await assert.rejects(stat(join(dir, "bob.crt")));

    await rm(join(dir, "client-ca.key"));
    await assert.rejects(
      writeCertSet(dir, {}),
      /client-ca\.key is missing but .*client-ca\.crt exists/,
    );
    // A leaf is not a CA.
    await writeFile(
      join(dir, "client-ca.key"),
      await readFile(join(dir, "admin.key")),
    );
    await writeFile(
      join(dir, "client-ca.crt"),
      await readFile(join(dir, "admin.crt")),
    );
    await assert.rejects(writeCertSet(dir, {}), /is not a CA certificate/);
  });
});

Deno.test("writeCertSet refuses bad names and days, naming them", async () => {
  await withDir(async (dir) => {
    for (
      const [options, message] of [
        [{ users: ["../etc"] }, /Invalid user "\.\.\/etc"/],
        [{ users: ["server-ca"] }, /Invalid user "server-ca": server-ca\.crt/],
        [{ serverNames: ["bad name"] }, /Invalid server name "bad name"/],
        [{ days: 0 }, /Invalid days 0/],
        [{ days: 40_000 }, /Invalid days 40000/],
      ] as [CertSetOptions, RegExp][]
    ) {
      await assert.rejects(writeCertSet(dir, options), message);
    }
    await assert.rejects(stat(dir), "nothing was written");
  });
});

Deno.test("loadIssued reads a pair back; undefined when absent", async () => {
  await withDir(async (dir) => {
    assert.equal(await loadIssued(dir, "server"), undefined);
    await writeCertSet(dir, { users: ["alice"] });
    const alice = await loadIssued(dir, "alice");
    assert.equal(alice?.certificate.subject, "CN=alice");
    await writeFile(join(dir, "alice.crt"), "not a certificate");
    await assert.rejects(loadIssued(dir, "alice"), /Cannot read .*alice\.crt/);
  });
});
