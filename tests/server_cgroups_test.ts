/**
 * The real server says at start-up where job cgroups go and why, and
 * refuses to start when its own limits need a cgroup controller it cannot
 * get (the per-host placement rules are in `cgroup/v2_test.ts` and the VM
 * suite's `tests/vm/v2_layouts_test.ts`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isV2Host } from "../cgroup/testing.ts";
import { REPO, startServer, TESTDATA } from "./server_harness.ts";

const ignore = Deno.uid() !== 0;

Deno.test({
  name: "the server logs its cgroup placement and the reason before listening",
  ignore,
  async fn() {
    const server = await startServer();
    try {
      const logs = server.logs();
      const placement = logs.findIndex((e) => e.event === "cgroup_placement");
      const listening = logs.findIndex((e) => e.event === "listening");
      assert.ok(
        placement >= 0 && placement < listening,
        server.lines.join("\n"),
      );
      const entry = logs[placement];
      assert.match(String(entry.cgroups), /^cgroup v[12]: /);
      assert.match(
        String(entry.reason),
        isV2Host()
          ? /delegated to it|below \/telejob at the hierarchy's root/
          : /cgroup v1: job cgroups go below the server's own cgroup/,
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "server limits needing a controller its job cgroups cannot get stop the start-up",
  // A cgroup v2 parent whose parent passes on no cpu; v1 mounts every
  // controller on our hosts, so this runs on v2 (the VM, a real host).
  ignore: ignore || !isV2Host(),
  async fn() {
    const slice = `/sys/fs/cgroup/telejobtest-nocpu-${Deno.pid}`;
    await Deno.mkdir(slice);
    const dataDir = await Deno.makeTempDir({ prefix: "telejob-server-test-" });
    try {
      await Deno.writeTextFile(`${slice}/cgroup.subtree_control`, "+memory");
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(REPO, "server", "main.ts"),
          "--address",
          "127.0.0.1:0",
          "--server-cert",
          join(TESTDATA, "server.crt"),
          "--server-key",
          join(TESTDATA, "server.key"),
          "--client-ca-cert",
          join(TESTDATA, "client-ca.crt"),
          "--data-dir",
          dataDir,
          "--cgroup-parent",
          `/telejobtest-nocpu-${Deno.pid}/jobs`,
          "--cpu-limit",
          "0.5",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        // A server that wrongly starts would otherwise run until killed.
        signal: AbortSignal.timeout(60_000),
      }).output();
      const text = new TextDecoder().decode(stderr);
      assert.notEqual(code, 0, text);
      assert.match(
        text,
        /The server's --cpu-limit needs the cpu controller, but \S+\/jobs\/cgroup\.subtree_control does not enable it/,
      );
    } finally {
      await Deno.remove(`${slice}/jobs`).catch(() => {});
      await Deno.remove(slice);
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
