/**
 * `telejob-server certs` end to end: the certificates it makes serve real
 * mutual TLS with the real server, and a renewal from the same CAs keeps
 * every issued certificate working.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  listWithFiles as listAs,
  REPO,
  startServer,
  TESTDATA,
} from "./server_harness.ts";

async function telejobServer(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(REPO, "server", "main.ts"), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("telejob-server certs makes a working set and renews it from the same CAs", async () => {
  const root = await Deno.makeTempDir({ prefix: "telejob-certs-" });
  const dir = join(root, "pki");
  try {
    const made = await telejobServer([
      "certs",
      "--dir",
      dir,
      "--user",
      "alice",
      "--days",
      "7",
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /Created .*server-ca\.crt \(CA/);
    assert.match(made.stdout, /Created .*alice\.crt \(client/);
    assert.equal(Deno.statSync(join(dir, "alice.key")).mode! & 0o777, 0o600);

    const server = await startServer({
      args: [
        "--server-cert",
        join(dir, "server.crt"),
        "--server-key",
        join(dir, "server.key"),
        "--client-ca-cert",
        join(dir, "client-ca.crt"),
      ],
    });
    try {
      const ca = join(dir, "server-ca.crt");
      assert.equal(await listAs(server, { ca, dir, user: "alice" }), "OK 0");
      // The committed test CA means nothing to this server.
      assert.equal(
        await listAs(server, {
          ca,
          dir: TESTDATA,
          user: "client1",
        }),
        "UNAVAILABLE",
      );

      const renewed = await telejobServer([
        "certs",
        "--dir",
        dir,
        "--user",
        "bob",
      ]);
      assert.equal(renewed.code, 0, renewed.stderr);
      assert.match(renewed.stdout, /Using .*client-ca\.crt \(existing CA/);
      // bob is issued by the CA the running server trusts; alice still works.
      assert.equal(await listAs(server, { ca, dir, user: "bob" }), "OK 0");
      assert.equal(await listAs(server, { ca, dir, user: "alice" }), "OK 0");
    } finally {
      await server.stop();
    }

    const bad = await telejobServer(["certs", "--dir", dir, "--days", "x"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Invalid --days "x": expected a whole number/);
    const missing = await telejobServer(["certs"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Missing --dir/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
