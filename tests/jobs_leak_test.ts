/**
 * After 1,000 short jobs the engine's process is back where it started:
 * open fds, child processes and job cgroups. The engine runs in a process of
 * its own (tests/fixtures/engine_leak.ts) so that only its resources count.
 */
import assert from "node:assert/strict";
import { detectDriver } from "../cgroup/mod.ts";
import { removeParent, testParent } from "../server/jobs/_test_util.ts";

/** Fds in `after` that are not in `before`. */
function added(before: string[], after: string[]): string[] {
  return after.filter((fd) => !before.includes(fd));
}

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
    assert.equal(report.jobs, 2000 + report.warmups);
    assert.equal(report.finished, report.jobs);
    // Deno's runtime opens one socket pair of its own on first need, at a
    // moment that depends on timing (seen with plain Deno.Command spawns,
    // no engine); it may land in the first thousand, never per job.
    const once = added(report.before.fds, report.after.fds);
    assert.ok(
      once.length === 0 ||
        (once.length === 2 && once.every((fd) => fd.includes(":socket:["))),
      `open fds after 1,000 jobs: ${once.join(" ")}`,
    );
    assert.deepEqual(report.afterMore.fds, report.after.fds, "open fds");
    for (const snapshot of [report.after, report.afterMore]) {
      assert.deepEqual(snapshot.children, report.before.children);
      assert.deepEqual(snapshot.cgroups, report.before.cgroups);
    }
    assert.deepEqual(report.before.cgroups, []);
  } finally {
    await removeParent(await detectDriver({ parent }));
    await Deno.remove(dataDir, { recursive: true });
  }
});
