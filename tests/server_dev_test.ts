/**
 * `deno task serve`'s certificates (issue 10, finding 8): the development
 * server makes a set of its own and never trusts the committed test CA,
 * whose key anyone can read.
 */
import assert from "node:assert/strict";
import { copyFile, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { DEV_USERS, devServerArgs, ensureDevCerts } from "../server/dev.ts";
import { listWithFiles, startServer, TESTDATA } from "./server_harness.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "telejob-serve-certs-" });
  try {
    await fn(join(root, "certs", "serve"));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The TLS and admin flags of `deno task serve`, without its port and data. */
function tlsArgs(dir: string): string[] {
  const args = devServerArgs(dir);
  const keep = ["--server-cert", "--server-key", "--client-ca-cert", "--admin"];
  return args.flatMap((arg, i) => keep.includes(arg) ? [arg, args[i + 1]] : []);
}

Deno.test("deno task serve: a fresh set of its own; the committed test certificates are refused", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    await ensureDevCerts(dir, { log: (line) => lines.push(line) });
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ["server-ca", "client-ca", "server", ...DEV_USERS]
        .flatMap((name) => [`${name}.crt`, `${name}.key`]).sort(),
    );
    for (const file of await readdir(dir)) {
      if (file.endsWith(".key")) {
        assert.equal((await stat(join(dir, file))).mode & 0o777, 0o600, file);
      }
    }
    assert.notEqual(
      await readFile(join(dir, "client-ca.crt"), "utf8"),
      await readFile(join(TESTDATA, "client-ca.crt"), "utf8"),
    );
    assert.ok(lines.some((l) => l.includes("client-ca.crt (CA")));

    const server = await startServer({ args: tlsArgs(dir) });
    try {
      const serverCa = join(dir, "server-ca.crt");
      // The committed admin certificate, whose key is public, gets nowhere.
      for (const user of ["admin", "client1"]) {
        assert.equal(
          await listWithFiles(server, {
            ca: serverCa,
            dir: TESTDATA,
            user: user,
          }),
          "UNAVAILABLE",
          user,
        );
      }
      assert.equal(
        await listWithFiles(server, {
          ca: serverCa,
          dir: dir,
          user: "client1",
        }),
        "OK 0",
      );
      const from = server.lines.length;
      assert.equal(
        await listWithFiles(server, { ca: serverCa, dir, user: "admin" }),
        "OK 0",
      );
      const rpc = await server.waitForLog((e) => e.method === "List", from);
      assert.equal(rpc.user, "admin");
      const refused = server.logs().filter((e) =>
        e.event === "tls_handshake_failed" || e.event === "connection_refused"
      );
      assert.ok(refused.length >= 2, JSON.stringify(refused));
    } finally {
      await server.stop();
    }
  });
});

Deno.test("deno task serve: later runs reuse the set and renew what is missing from the same CA", async () => {
  await withDir(async (dir) => {
    await ensureDevCerts(dir);
    const ca = await readFile(join(dir, "client-ca.crt"), "utf8");
    const client1 = await readFile(join(dir, "client1.crt"), "utf8");

    const quiet: string[] = [];
    await ensureDevCerts(dir, { log: (line) => quiet.push(line) });
    assert.deepEqual(quiet, [], "a valid set is left alone");

    await rm(join(dir, "client2.crt"));
    const renewal: string[] = [];
    await ensureDevCerts(dir, { log: (line) => renewal.push(line) });
    assert.ok(renewal.some((l) => /Using .*client-ca\.crt/.test(l)));
    assert.ok(renewal.some((l) => /Created .*client2\.crt/.test(l)));
    assert.equal(await readFile(join(dir, "client-ca.crt"), "utf8"), ca);
    assert.equal(await readFile(join(dir, "client1.crt"), "utf8"), client1);
  });
});

Deno.test("deno task serve refuses a set whose client CA is the committed test CA", async () => {
  await withDir(async (dir) => {
    await ensureDevCerts(dir);
    for (const file of ["client-ca.crt", "client-ca.key"]) {
      await copyFile(join(TESTDATA, file), join(dir, file));
    }
    await assert.rejects(
      ensureDevCerts(dir),
      /client-ca\.crt is the committed test CA, whose key is public/,
    );
  });
});

Deno.test("deno task serve under sudo hands the client files to the developer", async () => {
  await withDir(async (dir) => {
    await ensureDevCerts(dir, { clientOwner: { uid: 65534, gid: 65534 } });
    for (const file of ["client1.key", "admin.crt", "server-ca.crt"]) {
      assert.equal((await stat(join(dir, file))).uid, 65534, file);
    }
    for (const file of ["client-ca.key", "server-ca.key", "server.key"]) {
      assert.equal((await stat(join(dir, file))).uid, Deno.uid(), file);
    }
    assert.equal((await stat(dir)).mode & 0o777, 0o711);
  });
});
