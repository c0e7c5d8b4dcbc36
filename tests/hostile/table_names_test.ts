/**
 * Finding 9 of issue 10: owner names and commands with zero-width, bidi or
 * C1 control characters printed raw in tables, so `ad\u200bmin` showed as
 * `admin`. Tables now escape them; JSON keeps the exact strings.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createLeaf, writeIssued } from "../../pki/mod.ts";
import { loadIssued } from "../../pki/cert_set.ts";
import { startServer, TESTDATA } from "../server_harness.ts";
import { telejob } from "./_run_cli.ts";

const SPOOF = "ad\u200bmin";
const HIDDEN = /\p{Cc}|\p{Cf}|\p{Zl}|\p{Zp}/u;

/** A client certificate for `name` from the test client CA, in `dir`. */
async function clientCert(dir: string, file: string, name: string) {
  const ca = await loadIssued(TESTDATA, "client-ca");
  const leaf = await createLeaf(file, ca!, {
    usage: "client",
    commonName: name,
    notAfter: new Date(Date.now() + 86_400_000),
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  await writeIssued(dir, leaf);
}

Deno.test("tables escape hidden and bidi characters in owner, command and arguments; JSON stays exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-names-" });
  const server = await startServer();
  try {
    await clientCert(dir, "spoof", SPOOF);
    const args = ["-c", "true", "\u202etxt.exe", "c1\u0085", "a\u2028b"];
    const started = await telejob(
      server,
      ["start", "sh", ...args],
      "spoof",
      dir,
    );
    assert.equal(started.code, 0, started.err);
    const id = started.out.trim();

    const table = await telejob(server, ["list"], "admin");
    assert.equal(table.code, 0, table.err);
    const row = table.out.split("\n").find((l) => l.startsWith(`${id} `))!;
    assert.doesNotMatch(row, HIDDEN, JSON.stringify(row));
    assert.match(row, /\$'ad\\u200bmin'/);
    assert.match(
      row,
      /sh -c true \$'\\u202etxt\.exe' \$'c1\\u0085' \$'a\\u2028b'/,
    );
    const status = await telejob(server, ["status", id], "spoof", dir);
    assert.equal(status.code, 0, status.err);
    assert.doesNotMatch(status.out.replaceAll("\n", ""), HIDDEN);

    const json = await telejob(server, ["--output", "json", "list"], "admin");
    const job =
      (JSON.parse(json.out) as { id: string; owner: string; args: string[] }[])
        .find((j) => j.id === id)!;
    assert.equal(job.owner, SPOOF);
    assert.deepEqual(job.args, args);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
