/**
 * The real server says at start-up where job cgroups go and why, and
 * refuses to start when its own limits need a cgroup controller it cannot
 * get (the per-host placement rules are in `cgroup/v2_test.ts` and the VM
 * suite's `tests/vm/v2_layouts_test.ts`).
 */
import assert from "node:assert/strict";
import { isV2Host } from "../cgroup/testing.ts";
import { startServer } from "./server_harness.ts";

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
    try {
      await Deno.writeTextFile(`${slice}/cgroup.subtree_control`, "+memory");
      await assert.rejects(
        startServer({
          args: [
            "--cgroup-parent",
            `/telejobtest-nocpu-${Deno.pid}/jobs`,
            "--cpu-limit",
            "0.5",
          ],
        }),
        /did not start \(exit [1-9][\s\S]*The server's --cpu-limit needs the cpu controller, but \S+\/jobs\/cgroup\.subtree_control does not enable it/,
      );
    } finally {
      await Deno.remove(`${slice}/jobs`).catch(() => {});
      await Deno.remove(slice);
    }
  },
});
