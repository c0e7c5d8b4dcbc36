import assert from "node:assert/strict";
import {
  CgroupError,
  cgroupError,
  existsSync,
  jobDirName,
  joinCgroupPath,
  listJobDirs,
  makeJobDir,
  parseKeyed,
  readPids,
  removeDir,
  resolveParent,
  signalPid,
  writeFile,
  writeFileSync,
} from "./fs.ts";
import { runJob, testDriver, waitFor } from "./testing.ts";

const ignore = Deno.uid() !== 0 || Deno.build.os !== "linux";

Deno.test("jobDirName adds the prefix once and refuses unsafe names", () => {
  assert.equal(jobDirName("42"), "telejob-42");
  assert.equal(jobDirName("telejob-42"), "telejob-42");
  for (const bad of ["", "a/b", "..", "a b", "x\n", "telejob-", "é"]) {
    assert.throws(() => jobDirName(bad), /Invalid job cgroup name/, bad);
  }
  assert.throws(() => jobDirName("server"), /reserved for the server/);
  assert.throws(() => jobDirName("a".repeat(201)), /at most 200/);
});

Deno.test("resolveParent: default, absolute and relative parents", () => {
  assert.equal(
    resolveParent("/process_api/abc", undefined),
    "/process_api/abc",
  );
  assert.equal(resolveParent("/", ""), "/");
  assert.equal(resolveParent("/own", "/srv//telejob/"), "/srv/telejob");
  assert.equal(resolveParent("/own", "jobs/a"), "/own/jobs/a");
  assert.equal(resolveParent("/", "jobs"), "/jobs");
  assert.throws(
    () => resolveParent("/own", "../escape"),
    /--cgroup-parent.*"\.\."/,
  );
  assert.throws(() => resolveParent("/own", "/a/./b"), /not allowed/);
});

Deno.test("joinCgroupPath joins a mount point and a cgroup path", () => {
  assert.equal(joinCgroupPath("/sys/fs/cgroup/cpu", "/"), "/sys/fs/cgroup/cpu");
  assert.equal(joinCgroupPath("/sys/fs/cgroup/", "/a/b"), "/sys/fs/cgroup/a/b");
});

Deno.test("parseKeyed reads flat-keyed kernel files", () => {
  const map = parseKeyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  assert.equal(map.get("oom_kill"), 3);
  assert.equal(map.get("missing"), undefined);
});

Deno.test("cgroupError names the action, the path and what to do", () => {
  const error = cgroupError(
    'write "1" to',
    "/sys/fs/cgroup/x/cgroup.kill",
    new Deno.errors.PermissionDenied("Permission denied"),
  );
  assert.match(
    error.message,
    /^Failed to write "1" to \/sys\/fs\/cgroup\/x\/cgroup\.kill: Permission denied; run the server as root/,
  );
  assert.ok(error.cause instanceof Deno.errors.PermissionDenied);
  assert.ok(error instanceof CgroupError);
  assert.equal(error.name, "CgroupError");
  assert.equal(error.op, 'write "1" to');
  assert.equal(error.path, "/sys/fs/cgroup/x/cgroup.kill");
  assert.equal(error.code, "EACCES");
});

Deno.test("a CgroupError carries the kernel's errno name for callers to test", async () => {
  const error = await writeFile("/proc/self/no-such-dir/file", "1").then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof CgroupError, String(error));
  assert.equal(error.code, "ENOENT");
  assert.equal(error.op, 'write "1" to');
  assert.equal(error.path, "/proc/self/no-such-dir/file");
  const dir = await Deno.makeTempDir();
  try {
    const exists = await makeJobDir(dir).then(() => undefined, (e) => e);
    assert.ok(exists instanceof CgroupError, String(exists));
    assert.equal(exists.code, "EEXIST");
    assert.match(
      exists.message,
      /^Failed to create cgroup .*: it already exists; remove the stale cgroup/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const busy = cgroupError("remove cgroup", "/x", new Deno.errors.Busy("busy"));
  assert.equal(busy.code, "EBUSY");
  assert.equal(cgroupError("read", "/x", "odd").code, undefined);
});

Deno.test("writeFile wraps a kernel error with the path", async () => {
  await assert.rejects(
    () => writeFile("/proc/self/no-such-dir/file", "1"),
    /Failed to write "1" to \/proc\/self\/no-such-dir\/file: .*check that the cgroup exists/,
  );
});

Deno.test("writeFileSync writes in one write and wraps a kernel error with the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    writeFileSync(`${dir}/limit`, "100");
    assert.equal(await Deno.readTextFile(`${dir}/limit`), "100");
    assert.ok(existsSync(`${dir}/limit`));
    assert.ok(!existsSync(`${dir}/missing`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(
    () => writeFileSync("/proc/self/no-such-dir/file", "1"),
    /Failed to write "1" to \/proc\/self\/no-such-dir\/file: .*check that the cgroup exists/,
  );
});

Deno.test("readPids of a missing file is empty; signalPid ignores gone pids", async () => {
  assert.deepEqual(await readPids("/proc/self/no-such-file"), []);
  const child = new Deno.Command("/bin/true").spawn();
  await child.status;
  signalPid(child.pid, "SIGTERM"); // reaped: ESRCH is ignored
});

Deno.test("listJobDirs lists only job directories, never the server leaf", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["telejob-2", "telejob-1", "telejob-server", "other"]) {
      await Deno.mkdir(`${dir}/${name}`);
    }
    await Deno.writeTextFile(`${dir}/telejob-file`, "");
    assert.deepEqual(await listJobDirs(dir), ["telejob-1", "telejob-2"]);
    assert.deepEqual(await listJobDirs(`${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "removeDir retries while busy and reports a cgroup that stays busy",
  ignore,
  async fn() {
    await using t = await testDriver();
    const cgroup = await t.driver.create("busy", {});
    const dir = cgroup.procsFiles[0].slice(0, -"/cgroup.procs".length);
    await using job = await runJob(cgroup, "/bin/sleep", ["30"]);
    await waitFor(
      "the job to enter",
      async () => (await cgroup.pids()).length > 0,
    );
    await assert.rejects(
      () => removeDir(dir, { timeoutMs: 50 }),
      /Failed to remove cgroup .*busy.*retry once its processes have exited/i,
    );
    // Removal started while the job still runs must ride out its exit.
    const removing = removeDir(dir, { timeoutMs: 10000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const pid of await cgroup.pids()) signalPid(pid, "SIGKILL");
    await job.child.status;
    await removing;
    await cgroup.remove();
    assert.ok(!(await t.driver.list()).includes(cgroup.name));
    await removeDir(dir); // already gone: not an error
  },
});
