/**
 * A job running as root can make cgroups inside its own and move processes
 * there. Stop and the job's end must still kill every process of the job's
 * subtree and remove the subtree bottom-up (v1 natively; v2 in the VM of
 * `deno task test:cgroup2`). Restart recovery is in
 * `tests/jobs_restart_test.ts`.
 * @module
 */
import assert from "node:assert/strict";
import type { CgroupDriver } from "../../cgroup/mod.ts";
import {
  collect,
  NESTED_ESCAPE,
  pidsWithMarker,
  sleepMarker,
  text,
  until,
  withEngine,
} from "./_test_util.ts";
import type { JobEngine } from "./engine.ts";

const ignore = Deno.uid() !== 0;
const ROOT_POLICY = { runAs: [{ owner: "alice", logins: ["root"] }] };

/** Starts the escaping job and returns its id and cgroup directories. */
async function startEscape(
  engine: JobEngine,
  cgroups: CgroupDriver,
  marker: string,
  mode: "stay" | "exit",
): Promise<{ id: string; dirs: readonly string[] }> {
  const job = await engine.start("alice", {
    command: "sh",
    args: ["-c", NESTED_ESCAPE, "sh", marker, mode],
    // Only root may make cgroups; the policy lets alice's job be root.
    user: "root",
  });
  const [name] = await cgroups.list();
  assert.ok(name, "the job has a cgroup");
  const dirs = cgroups.open(name).paths;
  await until(
    "the job to move its child into nested/",
    async () =>
      text(await collect(engine.logs("alice", job.id))) === "ready\n" ||
      (await engine.status("alice", job.id)).state === "finished",
  );
  return { id: job.id, dirs };
}

async function assertNothingLeft(
  cgroups: CgroupDriver,
  marker: string,
  dirs: readonly string[],
): Promise<void> {
  assert.deepEqual(await pidsWithMarker(marker), [], "a process survived");
  assert.deepEqual(await cgroups.list(), [], "a job cgroup leaked");
  for (const dir of dirs) {
    const left = await Deno.lstat(dir).then(() => true, () => false);
    assert.equal(left, false, `${dir} is still there`);
  }
}

Deno.test({
  name: "stop kills a child the job hid in a nested cgroup and removes it",
  ignore,
  async fn() {
    await withEngine(async (engine, { cgroups }) => {
      const marker = sleepMarker();
      const { id, dirs } = await startEscape(engine, cgroups, marker, "stay");
      assert.equal((await pidsWithMarker(marker)).length, 2);
      for (const dir of dirs) {
        assert.ok((await Deno.stat(`${dir}/nested`)).isDirectory);
      }
      const stopped = await engine.stop("alice", id, { graceMs: 0 });
      assert.equal(stopped.signal, "SIGKILL");
      await assertNothingLeft(cgroups, marker, dirs);
    }, ROOT_POLICY);
  },
});

Deno.test({
  name: "a job's end kills a child it hid in a nested cgroup",
  ignore,
  async fn() {
    await withEngine(async (engine, { cgroups }) => {
      const marker = sleepMarker();
      const { id, dirs } = await startEscape(engine, cgroups, marker, "exit");
      assert.equal(
        text(await collect(engine.logs("alice", id, { follow: true }))),
        "ready\n",
      );
      const info = await engine.status("alice", id);
      assert.equal(info.exitCode, 0);
      await assertNothingLeft(cgroups, marker, dirs);
    }, ROOT_POLICY);
  },
});
