/**
 * The v2 driver under delegation: the server runs in a non-root cgroup that
 * holds processes, as under systemd with `Delegate=yes`, where controllers
 * are available to the service's cgroup but not yet enabled for its children.
 * cgroup v2's no-internal-processes rule forbids enabling them while the
 * cgroup holds processes, so the driver must get out of its own way first.
 *
 * Only runs inside the VM of `deno task test:cgroup2` (`TELEJOB_VM=1`): it
 * moves the test process around at the root of a pure v2 hierarchy.
 * @module
 */

import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { detectDriver, type JobCgroup, SERVER_LEAF } from "../../cgroup/mod.ts";
import { runJob, waitFor } from "../../cgroup/testing.ts";

const inVm = Deno.env.get("TELEJOB_VM") === "1";
const root = "/sys/fs/cgroup";

/** This process's cgroup v2 path, e.g. `/system.slice/telejob.service`. */
async function ownCgroup(): Promise<string> {
  const text = await readFile("/proc/self/cgroup", "utf8");
  const line = text.split("\n").find((l) => l.startsWith("0::"));
  assert.ok(line, text);
  return line.slice(3);
}

/** Removes a cgroup and every cgroup below it, children first. */
async function removeTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeTree(`${dir}/${entry.name}`);
  }
  // A killed process leaves its cgroup a moment after it is reaped.
  await waitFor(`${dir} to be removable`, async () => {
    try {
      await rmdir(dir);
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === "EBUSY") return false;
      throw error;
    }
  });
}

/**
 * A fresh cgroup `/<name>-<pid>` below the root. With `enter`, it is a service
 * cgroup like the one systemd gives a unit with `Delegate=yes`: this process
 * in it and nothing enabled in its `cgroup.subtree_control`. Disposing moves
 * this process back to the root and removes the cgroup with everything the
 * driver created below it.
 */
async function tempCgroup(
  name: string,
  options: { enter?: boolean } = {},
): Promise<AsyncDisposable & { dir: string; path: string }> {
  const path = `/${name}-${Deno.pid}`;
  const dir = `${root}${path}`;
  await mkdir(dir);
  if (options.enter) await writeFile(`${dir}/cgroup.procs`, String(Deno.pid));
  return {
    dir,
    path,
    async [Symbol.asyncDispose]() {
      await writeFile(`${root}/cgroup.procs`, String(Deno.pid));
      await removeTree(dir);
    },
  };
}

/** Kills and removes a job cgroup when disposed. */
function disposable(cgroup: JobCgroup): AsyncDisposable {
  return {
    async [Symbol.asyncDispose]() {
      await cgroup.kill();
      await cgroup.remove();
    },
  };
}

/** Share of one CPU a busy loop in `cgroup` gets over `ms`, from cpu.stat. */
async function busyLoopShare(cgroup: JobCgroup, ms: number): Promise<number> {
  await using _job = await runJob(cgroup, "/bin/sh", [
    "-c",
    "while :; do :; done",
  ]);
  await waitFor(
    "the busy loop to start",
    async () => (await cgroup.usage()).cpuUsec > 0,
  );
  const u0 = (await cgroup.usage()).cpuUsec;
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const u1 = (await cgroup.usage()).cpuUsec;
  return (u1 - u0) / ((performance.now() - t0) * 1000);
}

Deno.test({
  name:
    "v2 delegation: a server in a cgroup with processes moves into a leaf and its jobs are limited",
  ignore: !inVm,
  async fn() {
    await using service = await tempCgroup("telejob-delegated", {
      enter: true,
    });
    assert.equal(await ownCgroup(), service.path);
    assert.equal(
      (await readFile(`${service.dir}/cgroup.subtree_control`, "utf8")).trim(),
      "",
    );

    const driver = await detectDriver({});
    assert.equal(driver.version, 2);
    // The server left its cgroup to a leaf, so the controllers could be
    // enabled for the job cgroups beside it.
    assert.equal(await ownCgroup(), `${service.path}/${SERVER_LEAF}`);
    assert.equal(
      (await readFile(`${service.dir}/cgroup.procs`, "utf8")).trim(),
      "",
    );
    const enabled = (await readFile(
      `${service.dir}/cgroup.subtree_control`,
      "utf8",
    )).trim().split(" ").sort();
    assert.deepEqual(enabled, ["cpu", "io", "memory", "pids"]);

    const cgroup = await driver.create("delegated", {
      cpu: 0.2,
      memoryBytes: 64 * 1024 * 1024,
      pids: 32,
    });
    await using _cgroup = disposable(cgroup);
    assert.deepEqual(await driver.list(), [cgroup.name]);
    const dir = `${service.dir}/${cgroup.name}`;
    assert.deepEqual(cgroup.procsFiles, [`${dir}/cgroup.procs`]);
    assert.equal(await readFile(`${dir}/cpu.max`, "utf8"), "20000 100000\n");
    assert.equal(await readFile(`${dir}/memory.max`, "utf8"), "67108864\n");
    assert.equal(await readFile(`${dir}/pids.max`, "utf8"), "32\n");

    {
      await using job = await runJob(cgroup, "/bin/cat", ["/proc/self/cgroup"]);
      assert.equal((await job.child.status).code, 0);
      assert.equal(
        await job.output(),
        `0::${service.path}/${cgroup.name}\n`,
      );
    }

    const share = await busyLoopShare(cgroup, 2000);
    console.log(`busy loop in the delegated job: ${(share * 100).toFixed(1)}%`);
    assert.ok(share <= 0.25, `job used ${share} of a CPU under cpu 0.2`);
  },
});

Deno.test({
  name:
    "v2 delegation: other processes in the server's cgroup give a clear error; --cgroup-parent elsewhere works",
  ignore: !inVm,
  async fn() {
    await using service = await tempCgroup("telejob-crowded", {
      enter: true,
    });
    // A second process of the service, e.g. a helper started beside it.
    const sidecar = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'echo 0 > "$1" && exec sleep 1000',
        "sh",
        `${service.dir}/cgroup.procs`,
      ],
      stdin: "null",
    }).spawn();
    try {
      await waitFor(
        "the sidecar to join the service cgroup",
        async () =>
          (await readFile(`${service.dir}/cgroup.procs`, "utf8")).includes(
            `${sidecar.pid}\n`,
          ),
      );
      await assert.rejects(
        detectDriver({}),
        (error: Error) => {
          assert.match(error.message, /--cgroup-parent/);
          assert.match(error.message, new RegExp(`\\b${sidecar.pid}\\b`));
          return true;
        },
      );

      // An empty cgroup of the server's own, outside its service cgroup.
      await using jobs = await tempCgroup("telejob-jobs");
      const driver = await detectDriver({ parent: jobs.path });
      const cgroup = await driver.create("elsewhere", { pids: 8 });
      await using _cgroup = disposable(cgroup);
      await using job = await runJob(cgroup, "/bin/cat", ["/proc/self/cgroup"]);
      assert.equal((await job.child.status).code, 0);
      assert.equal(await job.output(), `0::${jobs.path}/${cgroup.name}\n`);
    } finally {
      sidecar.kill("SIGKILL");
      await sidecar.status;
    }
  },
});
