/**
 * The v1 driver: against the real kernel when this host has v1 controllers,
 * plus the hierarchy discovery logic against a directory tree that stands in
 * for the mounts (co-mounts and nested parents do not exist on this host).
 */
import assert from "node:assert/strict";
import { JobError } from "../common/errors.ts";
import { createV1Driver, hasV1Controllers, V1Driver } from "./v1.ts";
import { readSelf } from "./mounts.ts";
import { isAlive, runJob, testDriver, waitFor } from "./testing.ts";

const { mounts } = await readSelf();
const ignore = Deno.uid() !== 0 || !hasV1Controllers(mounts);
if (ignore) {
  console.warn("v1 kernel tests need root and cgroup v1 controllers: skipped");
}

function read(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

/** A whole disk of this host as MAJ:MIN, for blkio files. */
function diskDevice(): [number, number] | undefined {
  for (const entry of Deno.readDirSync("/sys/block")) {
    const [major, minor] = read(`/sys/block/${entry.name}/dev`).split(":").map(
      Number,
    );
    return [major, minor];
  }
  return undefined;
}

Deno.test({
  name: "v1: limits are written to the kernel's files",
  ignore,
  async fn() {
    await using t = await testDriver();
    assert.ok(t.driver instanceof V1Driver);
    const [major, minor] = diskDevice()!;
    const cgroup = await t.driver.create("limits", {
      cpu: 0.25,
      memoryBytes: 64 * 1024 * 1024,
      pids: 50,
      io: [{ major, minor, rbps: 1048576, wiops: 100 }],
    });
    const dirs = t.driver.open("limits").dirs;
    const cpu = dirs.get("cpu")!;
    assert.equal(read(`${cpu}/cpu.cfs_period_us`), "100000");
    assert.equal(read(`${cpu}/cpu.cfs_quota_us`), "25000");
    const memory = dirs.get("memory")!;
    assert.equal(read(`${memory}/memory.limit_in_bytes`), String(64 << 20));
    try {
      assert.equal(
        read(`${memory}/memory.memsw.limit_in_bytes`),
        String(64 << 20),
      );
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      assert.equal(read(`${memory}/memory.swappiness`), "0");
    }
    assert.equal(read(`${dirs.get("pids")}/pids.max`), "50");
    const blkio = dirs.get("blkio")!;
    assert.equal(
      read(`${blkio}/blkio.throttle.read_bps_device`),
      `${major}:${minor} 1048576`,
    );
    assert.equal(
      read(`${blkio}/blkio.throttle.write_iops_device`),
      `${major}:${minor} 100`,
    );
    assert.equal(read(`${blkio}/blkio.throttle.write_bps_device`), "");
    assert.deepEqual(await t.driver.list(), [cgroup.name]);
    await cgroup.remove();
    assert.deepEqual(await t.driver.list(), []);
  },
});

Deno.test({
  name: "v1: a failed create leaves no cgroup behind and names the file",
  ignore,
  async fn() {
    await using t = await testDriver();
    await t.driver.create("twice", {});
    await assert.rejects(
      () => t.driver.create("twice", {}),
      /Failed to create cgroup .*telejob-twice: it already exists/,
    );
    await assert.rejects(
      () =>
        t.driver.create("bad-io", {
          io: [{ major: 9999, minor: 9999, rbps: 1 }],
        }),
      /Failed to write "9999:9999 1" to .*telejob-bad-io\/blkio\.throttle\.read_bps_device/,
    );
    assert.deepEqual(await t.driver.list(), ["telejob-twice"]);
  },
});

// A process that forks a short-lived child as fast as it can: the set of
// pids changes all the time, yet never grows beyond two per loop.
const CHURN = `
$| = 1;
for (1 .. 3) { last unless fork(); }
print "churning\\n";
while (1) {
  my $pid = fork();
  if (defined $pid && $pid == 0) { exit 0; }
  waitpid($pid, 0) if $pid;
}
`;

Deno.test({
  name: "v1: kill() freezes, kills and thaws until forking processes are gone",
  ignore,
  async fn() {
    await using t = await testDriver();
    const cgroup = await t.driver.create("churn", { pids: 64 });
    await using job = await runJob(cgroup, "/usr/bin/perl", ["-e", CHURN]);
    await waitFor(
      "four churning processes",
      async () => (await job.output()).split("churning").length === 5,
    );
    const seen = await cgroup.pids();
    await cgroup.kill();
    assert.deepEqual(await cgroup.pids(), []);
    assert.equal((await job.child.status).signal, "SIGKILL");
    assert.ok(seen.every((pid) => !isAlive(pid)));
    const freezer = t.driver instanceof V1Driver &&
      t.driver.open("churn").dirs.get("freezer");
    if (freezer) assert.equal(read(`${freezer}/freezer.state`), "THAWED");
    await cgroup.remove();
  },
});

Deno.test({
  name: "v1: usage counts CPU time and peak memory",
  ignore,
  async fn() {
    await using t = await testDriver();
    const cgroup = await t.driver.create("usage", {});
    await using job = await runJob(cgroup, "/usr/bin/perl", [
      "-e",
      '$x = "x" x (20 << 20); 1 for 1 .. 2_000_000;',
    ]);
    assert.equal((await job.child.status).code, 0);
    const usage = await cgroup.usage();
    assert.ok(usage.cpuUsec > 10_000, JSON.stringify(usage));
    assert.ok(usage.memoryPeakBytes >= 20 << 20, JSON.stringify(usage));
    assert.equal(await cgroup.oomKills(), 0);
  },
});

/** Builds a fake mount tree in a temporary directory. */
async function fakeTree(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "telejob-v1-fake-" });
}

Deno.test("v1 discovery: co-mounted cpu,cpuacct share one job directory", async () => {
  const root = await fakeTree();
  try {
    const driver = await createV1Driver({
      parent: "jobs",
      mounts: [
        {
          version: 1,
          mountPoint: `${root}/cpu,cpuacct`,
          root: "/",
          controllers: ["cpu", "cpuacct"],
        },
        // The same hierarchy mounted a second time is used once.
        {
          version: 1,
          mountPoint: `${root}/again`,
          root: "/",
          controllers: ["cpu", "cpuacct"],
        },
        {
          version: 1,
          mountPoint: `${root}/memory`,
          root: "/",
          controllers: ["memory"],
        },
        {
          version: 1,
          mountPoint: `${root}/systemd`,
          root: "/",
          controllers: [],
          name: "systemd",
        },
        {
          version: 2,
          mountPoint: `${root}/unified`,
          root: "/",
          controllers: [],
        },
      ],
      memberships: [
        { id: 4, controllers: ["memory"], path: "/a/b" },
        { id: 2, controllers: ["cpu", "cpuacct"], path: "/" },
        { id: 0, controllers: [], path: "/" },
      ],
    });
    assert.deepEqual(driver.parentDirs, [
      `${root}/cpu,cpuacct/jobs`,
      `${root}/memory/a/b/jobs`,
    ]);
    const job = await driver.create("7", { cpu: 0.5 });
    assert.equal(job.name, "telejob-7");
    assert.equal(job.dirs.get("cpu"), job.dirs.get("cpuacct"));
    assert.deepEqual(job.procsFiles, [
      `${root}/cpu,cpuacct/jobs/telejob-7/cgroup.procs`,
      `${root}/memory/a/b/jobs/telejob-7/cgroup.procs`,
    ]);
    assert.equal(
      read(`${root}/cpu,cpuacct/jobs/telejob-7/cpu.cfs_quota_us`),
      "50000",
    );
    await Deno.writeTextFile(
      `${root}/cpu,cpuacct/jobs/telejob-7/cpuacct.usage`,
      "5000000\n",
    );
    assert.equal((await job.usage()).cpuUsec, 5000);
    // A per-job limit the host cannot enforce is the caller's precondition
    // (FAILED_PRECONDITION), never an internal error.
    await assert.rejects(
      () => driver.create("8", { pids: 5 }),
      (error: unknown) =>
        error instanceof JobError && error.code === "failed_precondition" &&
        /cannot enforce a pids limit: the cgroup v1 pids controller is not mounted/
          .test(error.message),
    );
    assert.deepEqual(await driver.list(), ["telejob-7"]);
    // The same limit as the server's own refuses the start-up instead.
    assert.throws(
      () => driver.checkServerLimits({ pids: 5 }),
      /The server's --pids-limit needs the cgroup v1 pids controller, which is not mounted .*mount -t cgroup -o pids .* or drop --pids-limit/,
    );
    driver.checkServerLimits({ cpu: 0.5 });
    // Recovery opens a job by the directories recorded at its creation.
    const reopened = driver.openPaths([
      `${root}/cpu,cpuacct/jobs/telejob-7`,
      `${root}/memory/a/b/jobs/telejob-7`,
    ]);
    assert.deepEqual(reopened.procsFiles, job.procsFiles);
    assert.equal(reopened.dirs.get("cpuacct"), job.dirs.get("cpuacct"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v1 discovery: clear errors when nothing usable is mounted", async () => {
  await assert.rejects(
    () => createV1Driver({ mounts: [], memberships: [] }),
    /No cgroup v1 hierarchy with the cpu, cpuacct, memory, blkio, pids or freezer controller is mounted/,
  );
  await assert.rejects(
    () =>
      createV1Driver({
        mounts: [{
          version: 1,
          mountPoint: "/x/memory",
          root: "/docker/1",
          controllers: ["memory"],
        }],
        memberships: [{ id: 4, controllers: ["memory"], path: "/elsewhere" }],
      }),
    /cgroup \/elsewhere is not visible below the mount \(root \/docker\/1\)/,
  );
});

Deno.test("v1 discovery: an absolute parent works when our own cgroup is hidden", async () => {
  const root = await Deno.makeTempDir({ prefix: "telejob-v1-fake-" });
  try {
    const driver = await createV1Driver({
      parent: "/jobs",
      mounts: [{
        version: 1,
        mountPoint: `${root}/memory`,
        root: "/docker/1",
        controllers: ["memory"],
      }],
      memberships: [{ id: 4, controllers: ["memory"], path: "/elsewhere" }],
    });
    assert.deepEqual(driver.parentDirs, [`${root}/memory/jobs`]);
    assert.ok((await Deno.stat(`${root}/memory/jobs`)).isDirectory);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
