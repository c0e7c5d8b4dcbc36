/**
 * After 1,000 short jobs the engine's process is back where it started:
 * open fds, child processes and job cgroups. The engine runs in a process of
 * its own (tests/fixtures/engine_leak.ts) so that only its resources count.
 */
import assert from "node:assert/strict";
import { detectDriver } from "../cgroup/mod.ts";
import { removeParent, testParent } from "../server/jobs/_test_util.ts";

Deno.test("1,000 short jobs leave no fd, process or cgroup behind", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-engine-test-" });
  const parent = testParent();
  try {
    const { code, stdout } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./fixtures/engine_leak.ts", import.meta.url).pathname,
        dataDir,
        parent,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(code, 0);
    const report = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(report.wrong, 0, "every job's output and end as expected");
    assert.equal(report.jobs, 1000 + report.warmups);
    assert.equal(report.finished, report.jobs);
    assert.deepEqual(report.after.fds, report.before.fds, "open fds");
    assert.deepEqual(report.after.children, report.before.children);
    assert.deepEqual(report.after.cgroups, report.before.cgroups);
    assert.deepEqual(report.before.cgroups, []);
  } finally {
    await removeParent(await detectDriver({ parent }));
    await Deno.remove(dataDir, { recursive: true });
  }
});
