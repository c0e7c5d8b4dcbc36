/**
 * `telejob-server --config FILE` with the real server process: the file's
 * settings apply, flags override them, and a bad file stops the server with
 * the file's line before it listens.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseServerArgs } from "../server/config.ts";
import {
  call,
  clientFor,
  failure,
  REPO,
  startServer,
} from "./server_harness.ts";

Deno.test("a config file configures the real server; a bad one stops it with the line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-config-" });
  try {
    const path = join(dir, "server.toml");
    await Deno.writeTextFile(path, `max-jobs-per-user = 1\n`);
    const server = await startServer({ args: ["--config", path] });
    const client = clientFor(server, "client1");
    try {
      const { id } = await call<{ id: string }>(client, "start", {
        command: "sleep",
        args: ["100"],
        env: [],
        cwd: "",
      });
      const over = await failure(client, "start", {
        command: "true",
        args: [],
        env: [],
        cwd: "",
      });
      assert.equal(over.code, "RESOURCE_EXHAUSTED");
      await call(client, "stop", { id, grace: { seconds: 0, nanos: 0 } });
    } finally {
      client.close();
      assert.equal((await server.stop()).code, 0);
    }

    await Deno.writeTextFile(
      path,
      `# ok\nmax-jobs-per-user = 1\nadmins = ["x"]\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(REPO, "server", "main.ts"), "--config", path],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.equal(
      new TextDecoder().decode(out.stderr).trim(),
      `${path}, line 3: unknown key "admins": the keys are telejob-server's flags without the dashes, such as address; run "telejob-server --help"`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy/server.toml, the example the README points to, is a valid config", async () => {
  const parsed = await parseServerArgs(
    ["--config", join(REPO, "deploy", "server.toml")],
    { env: () => undefined },
  );
  assert.ok("config" in parsed);
  assert.equal(parsed.config.serverCert, "/etc/telejob/pki/server.crt");
  assert.deepEqual(parsed.config.admins, ["admin"]);
});
