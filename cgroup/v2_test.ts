/**
 * The v2 driver. With the unified hierarchy holding the controllers (the VM
 * of `deno task test:cgroup2`) the limits and the no-internal-processes rule
 * are tested against the real kernel. On a hybrid host the controller-less
 * cgroup2 mount still proves the job lifecycle (entry, signal, cgroup.kill,
 * removal). The parent-chain logic is also tested on a directory tree that
 * stands in for the hierarchy.
 */
import assert from "node:assert/strict";
import { createV2Driver, findV2Mount, V2Driver } from "./v2.ts";
import { type CgroupMount, readSelf } from "./mounts.ts";
import { hasV1Controllers } from "./v1.ts";
import { fakeTree, isAlive, runJob, testDriver, waitFor } from "./testing.ts";
import { removeDir, signalPid } from "./fs.ts";
import { JobError } from "../common/errors.ts";

const self = await readSelf();
const root = Deno.uid() === 0;
const v2 = root ? await findV2Mount(self.mounts) : undefined;
const realV2 = v2 !== undefined && !hasV1Controllers(self.mounts);
// A cgroup2 mount without the controllers we use, as on a hybrid host.
const bare: CgroupMount | undefined = root && !realV2
  ? self.mounts.find((m) => m.version === 2 && m !== v2)
  : undefined;
if (!realV2) {
  console.warn(
    "cgroup v2 limit tests need a cgroup v2 host (run deno task test:cgroup2): skipped",
  );
}

function read(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

Deno.test({
  name: "v2: limits are written to the kernel's files",
  ignore: !realV2,
  async fn() {
    await using t = await testDriver();
    assert.ok(t.driver instanceof V2Driver);
    const disk = [...Deno.readDirSync("/sys/block")][0];
    const device = read(`/sys/block/${disk.name}/dev`);
    const [major, minor] = device.split(":").map(Number);
    const cgroup = await t.driver.create("limits", {
      cpu: 0.2,
      memoryBytes: 64 * 1024 * 1024,
      pids: 50,
      io: [{ major, minor, wbps: 2097152, riops: 100 }],
    });
    const dir = t.driver.open("limits").dir;
    assert.equal(read(`${dir}/cpu.max`), "20000 100000");
    assert.equal(read(`${dir}/memory.max`), String(64 << 20));
    try {
      assert.equal(read(`${dir}/memory.swap.max`), "0");
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    assert.equal(read(`${dir}/pids.max`), "50");
    assert.match(
      read(`${dir}/io.max`),
      new RegExp(`^${device} rbps=max wbps=2097152 riops=100 wiops=max`),
    );
    assert.deepEqual(await t.driver.list(), [cgroup.name]);
    await cgroup.remove();
    assert.deepEqual(await t.driver.list(), []);
  },
});

Deno.test({
  name: "v2: usage reads cpu.stat, memory.peak and io.stat",
  ignore: !realV2,
  async fn() {
    await using t = await testDriver();
    assert.ok(t.driver instanceof V2Driver);
    const cgroup = await t.driver.create("usage", {});
    await using job = await runJob(cgroup, "/usr/bin/perl", [
      "-e",
      '$x = "x" x (20 << 20); 1 for 1 .. 2_000_000;',
    ]);
    assert.equal((await job.child.status).code, 0);
    const usage = await cgroup.usage();
    assert.ok(usage.cpuUsec > 10_000, JSON.stringify(usage));
    // memory.peak is new in Linux 5.19; older kernels report 0.
    const hasPeak = await Deno.stat(
      `${t.driver.open("usage").dir}/memory.peak`,
    ).then(() => true, () => false);
    if (hasPeak) {
      assert.ok(usage.memoryPeakBytes >= 20 << 20, JSON.stringify(usage));
    }
    assert.equal(await cgroup.oomKills(), 0);
  },
});

/**
 * A new cgroup at the hierarchy's root, where the root passes the
 * controllers on (not below the test runner's own cgroup, which may be
 * shared), for a process to play a server whose cgroup holds processes.
 * Returns the cgroup's path and directory.
 */
async function serverCgroup(
  mount: CgroupMount,
): Promise<{ path: string; dir: string }> {
  const path = `/telejobtest-srv-${Deno.pid}-${Date.now().toString(36)}`;
  const dir = `${mount.mountPoint}${path}`;
  await Deno.mkdir(dir);
  return { path, dir };
}

Deno.test({
  name: "v2: a server cgroup with processes: the server moves to a leaf first",
  ignore: !realV2,
  async fn() {
    const mount = v2!;
    const { path, dir } = await serverCgroup(mount);
    // `sleep` plays the server: its cgroup is the parent, and it is in it.
    const server = new Deno.Command("/bin/sleep", { args: ["60"] }).spawn();
    const other = new Deno.Command("/bin/sleep", { args: ["60"] }).spawn();
    try {
      await Deno.writeTextFile(`${dir}/cgroup.procs`, String(server.pid));
      const driver = await createV2Driver({
        mounts: self.mounts,
        memberships: [{ id: 0, controllers: [], path }],
        pid: server.pid,
      });
      assert.equal(driver.parentDir, dir);
      assert.equal(driver.serverLeaf, `${dir}/telejob-server`);
      assert.equal(
        read(`${dir}/telejob-server/cgroup.procs`),
        String(server.pid),
      );
      assert.match(read(`/proc/${server.pid}/cgroup`), /\/telejob-server$/m);
      assert.deepEqual(
        read(`${dir}/cgroup.subtree_control`).split(" ").sort(),
        ["cpu", "io", "memory", "pids"],
      );
      const cgroup = await driver.create("job", { cpu: 0.2, pids: 10 });
      {
        await using job = await runJob(cgroup, "/bin/cat", [
          "/proc/self/cgroup",
        ]);
        assert.equal((await job.child.status).code, 0);
        assert.equal((await job.output()).trim(), `0::${path}/telejob-job`);
      }
      assert.deepEqual(await driver.list(), ["telejob-job"]);
      await cgroup.remove();

      // A second "server" in a cgroup that also holds a process not its own:
      // by default its jobs go to /telejob at the root; a --cgroup-parent
      // below the shared cgroup cannot work, and the error says what to do.
      const second = await serverCgroup(mount);
      try {
        await Deno.writeTextFile(
          `${second.dir}/cgroup.procs`,
          String(other.pid),
        );
        const options = {
          mounts: self.mounts,
          memberships: [{ id: 0, controllers: [], path: second.path }],
          pid: server.pid,
        };
        const fallback = await createV2Driver(options);
        assert.equal(fallback.parentDir, `${mount.mountPoint}/telejob`);
        assert.match(fallback.placement, /holds other processes/);
        await removeDir(fallback.parentDir).catch(() => {});
        await assert.rejects(
          () => createV2Driver({ ...options, parent: "jobs" }),
          /the cgroup holds other processes .*point --cgroup-parent at an empty cgroup/,
        );
        await removeDir(`${second.dir}/jobs`);
      } finally {
        other.kill("SIGKILL");
        await other.status;
        await removeDir(second.dir);
      }
    } finally {
      server.kill("SIGKILL");
      await server.status;
      await removeDir(`${dir}/telejob-server`);
      await removeDir(dir);
    }
  },
});

Deno.test({
  name:
    "v2: at the root of a cgroup namespace the server still moves to a leaf",
  ignore: !realV2,
  async fn() {
    const { dir } = await serverCgroup(v2!);
    // The mount seen from inside a cgroup namespace: its root is our cgroup,
    // which looks like the root but is bound by the no-internal-process rule.
    const nsMount: CgroupMount = {
      version: 2,
      mountPoint: dir,
      root: "/",
      controllers: [],
    };
    const server = new Deno.Command("/bin/sleep", { args: ["60"] }).spawn();
    try {
      await Deno.writeTextFile(`${dir}/cgroup.procs`, String(server.pid));
      const driver = await createV2Driver({
        mount: nsMount,
        mounts: [nsMount],
        memberships: [{ id: 0, controllers: [], path: "/" }],
        pid: server.pid,
      });
      assert.equal(driver.serverLeaf, `${dir}/telejob-server`);
      assert.equal(
        read(`${dir}/telejob-server/cgroup.procs`),
        String(server.pid),
      );
      assert.ok(driver.controllers.includes("cpu"), driver.parent);
      const cgroup = await driver.create("ns", { pids: 5 });
      await cgroup.remove();
    } finally {
      server.kill("SIGKILL");
      await server.status;
      await removeDir(`${dir}/telejob-server`);
      await removeDir(dir);
    }
  },
});

Deno.test({
  name:
    "v2 lifecycle on a controller-less cgroup2 mount: entry, signal, cgroup.kill, removal",
  ignore: bare === undefined,
  async fn() {
    const parent = `telejobtest-${Deno.pid}-${Date.now().toString(36)}`;
    const driver = await createV2Driver({ parent, mount: bare! });
    try {
      await assert.rejects(
        () => driver.create("limited", { cpu: 0.5 }),
        (error: unknown) =>
          error instanceof JobError && error.code === "failed_precondition" &&
          /cannot enforce a CPU limit: the cgroup v2 cpu controller is not enabled/
            .test(error.message),
      );
      assert.deepEqual(await driver.list(), []);
      const cgroup = await driver.create("life", {});
      await using job = await runJob(cgroup, "/bin/sh", [
        "-c",
        'cat /proc/self/cgroup; sleep 60 & trap "" TERM; (setsid sleep 60 &); exec sleep 60',
      ]);
      await waitFor(
        "three processes",
        async () => (await cgroup.pids()).length === 3,
      );
      const own = (await job.output()).split("\n").find((l) =>
        l.startsWith("0::")
      );
      assert.match(own ?? "", new RegExp(`/${parent}/telejob-life$`));
      const pids = await cgroup.pids();
      await cgroup.signal("SIGTERM");
      await waitFor(
        "the unprotected sleep to end",
        async () => (await cgroup.pids()).length === 2,
      );
      assert.ok(pids.includes(job.child.pid));
      assert.ok(isAlive(job.child.pid), "the shell ignores SIGTERM");
      await cgroup.kill();
      assert.deepEqual(await cgroup.pids(), []);
      assert.equal((await job.child.status).signal, "SIGKILL");
      assert.ok(pids.every((pid) => !isAlive(pid)));
      await cgroup.remove();
      assert.deepEqual(await driver.list(), []);
    } finally {
      for (const name of await driver.list()) {
        const cgroup = driver.open(name);
        for (const pid of await cgroup.pids()) signalPid(pid, "SIGKILL");
        await cgroup.remove();
      }
      await removeDir(driver.parentDir);
    }
  },
});

const ALL = "cpuset cpu io memory hugetlb pids rdma misc\n";

Deno.test("v2 parent chain: the server leaves its cgroup before controllers are enabled", async () => {
  const root = await fakeTree({
    "cgroup.controllers": ALL,
    "cgroup.subtree_control": "cpu io memory pids\n",
    "srv/cgroup.controllers": ALL,
    "srv/cgroup.subtree_control": "\n",
    "srv/cgroup.procs": "123\n",
    "srv/cgroup.type": "domain\n",
  });
  try {
    const mount: CgroupMount = {
      version: 2,
      mountPoint: root,
      root: "/",
      controllers: [],
    };
    const driver = await createV2Driver({
      mounts: [mount],
      memberships: [{ id: 0, controllers: [], path: "/srv" }],
      pid: 123,
    });
    assert.equal(driver.serverLeaf, `${root}/srv/telejob-server`);
    assert.equal(read(`${root}/srv/telejob-server/cgroup.procs`), "123");
    assert.equal(
      read(`${root}/srv/cgroup.subtree_control`),
      "+cpu +memory +io +pids",
    );
    await Deno.mkdir(`${root}/srv/telejob-1`);
    assert.deepEqual(await driver.list(), ["telejob-1"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v2 parent chain: a nested relative parent enables controllers all the way down", async () => {
  const root = await fakeTree({
    "cgroup.controllers": ALL,
    "cgroup.subtree_control": "cpu memory\n",
    "cgroup.procs": "1\n123\n",
  });
  try {
    const mount: CgroupMount = {
      version: 2,
      mountPoint: root,
      root: "/",
      controllers: [],
    };
    // The kernel creates these files in new cgroups; the fake needs them first.
    for (const dir of ["a", "a/b"]) {
      await Deno.mkdir(`${root}/${dir}`, { recursive: true });
      await Deno.writeTextFile(
        `${root}/${dir}/cgroup.controllers`,
        "cpu io memory pids",
      );
      await Deno.writeTextFile(`${root}/${dir}/cgroup.subtree_control`, "");
      await Deno.writeTextFile(`${root}/${dir}/cgroup.type`, "domain");
    }
    const driver = await createV2Driver({
      parent: "a/b",
      mounts: [mount],
      memberships: [{ id: 0, controllers: [], path: "/" }],
      pid: 123,
    });
    // The root may hold processes: nobody moves.
    assert.equal(driver.serverLeaf, undefined);
    assert.equal(read(`${root}/cgroup.subtree_control`), "+io +pids");
    assert.equal(
      read(`${root}/a/cgroup.subtree_control`),
      "+cpu +memory +io +pids",
    );
    assert.equal(
      read(`${root}/a/b/cgroup.subtree_control`),
      "+cpu +memory +io +pids",
    );
    assert.equal(driver.parentDir, `${root}/a/b`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v2 discovery ignores a cgroup2 mount without cpu, memory, io or pids", async () => {
  const root = await fakeTree({ "cgroup.controllers": "hugetlb\n" });
  try {
    const mount: CgroupMount = {
      version: 2,
      mountPoint: root,
      root: "/",
      controllers: [],
    };
    assert.equal(await findV2Mount([mount]), undefined);
    await assert.rejects(
      () => createV2Driver({ mounts: [mount], memberships: [] }),
      /No cgroup v2 hierarchy with controllers is mounted; mount cgroup2 at \/sys\/fs\/cgroup/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v2 discovery: our own cgroup hidden needs an absolute parent", async () => {
  const root = await fakeTree({
    "cgroup.controllers": ALL,
    "cgroup.subtree_control": "cpu io memory pids\n",
    "jobs/cgroup.controllers": ALL,
    "jobs/cgroup.subtree_control": "cpu io memory pids\n",
    "telejob/cgroup.controllers": ALL,
    "telejob/cgroup.subtree_control": "cpu io memory pids\n",
  });
  try {
    const mount: CgroupMount = {
      version: 2,
      mountPoint: root,
      root: "/ns",
      controllers: [],
    };
    const memberships = [{ id: 0, controllers: [], path: "/elsewhere" }];
    await assert.rejects(
      () => createV2Driver({ parent: "jobs", mounts: [mount], memberships }),
      /cgroup \/elsewhere is not visible below .*pass an absolute --cgroup-parent/,
    );
    const driver = await createV2Driver({
      parent: "/jobs",
      mounts: [mount],
      memberships,
    });
    assert.equal(driver.parentDir, `${root}/jobs`);
    assert.equal(driver.serverLeaf, undefined);
    // Without the flag: the hierarchy's root, which we can see.
    const fallback = await createV2Driver({ mounts: [mount], memberships });
    assert.equal(fallback.parentDir, `${root}/telejob`);
    assert.match(fallback.placement, /not visible below the mount/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
