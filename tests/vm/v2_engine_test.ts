/**
 * The job engine on the cgroup v2 driver, end to end: what the kernel counts
 * in cpu.stat, memory.peak, memory.events and io.stat reaches the job's
 * status, and stop (SIGTERM, grace, then cgroup.kill) leaves nothing behind.
 *
 * Only runs inside the VM of `deno task test:cgroup2` (`TELEJOB_VM=1`), where
 * the driver is v2 and `TELEJOB_TEST_BLOCK_DEVICE` is a scratch virtio disk
 * that the test overwrites.
 * @module
 */

import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { collect, text, withEngine } from "../../server/jobs/_test_util.ts";
import { isAlive, waitFor } from "../../cgroup/testing.ts";
import { detectDriver } from "../../cgroup/mod.ts";
import { JobEngine } from "../../server/jobs/engine.ts";
import { JobError } from "../../server/jobs/errors.ts";

const inVm = Deno.env.get("TELEJOB_VM") === "1";
const MIB = 1024 * 1024;

Deno.test({
  name: "v2 engine: cpu.stat, memory.peak and io.stat reach the job's status",
  ignore: !inVm,
  async fn() {
    const device = Deno.env.get("TELEJOB_TEST_BLOCK_DEVICE");
    assert.ok(device, "TELEJOB_TEST_BLOCK_DEVICE is not set");
    await withEngine(async (engine, { cgroups }) => {
      assert.equal(cgroups.version, 2);
      const job = await engine.start("alice", {
        command: "sh",
        args: [
          "-c",
          // 4 MiB of direct writes and 2 MiB of direct reads, about 20 MiB
          // held by tail (the input has no newline), and some CPU time.
          `dd if=/dev/zero of="$1" bs=1M count=4 oflag=direct 2>/dev/null &&
           dd if="$1" of=/dev/null bs=1M count=2 iflag=direct 2>/dev/null &&
           head -c 20M /dev/zero | tail | wc -c &&
           i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done`,
          "sh",
          device,
        ],
        // Writing the raw block device takes root, which the policy grants.
        user: "root",
      });
      const output = text(
        await collect(engine.logs("alice", job.id, { follow: true })),
      );
      assert.equal(output, `${20 * MIB}\ndone\n`);
      const { usage, exitCode } = await engine.status("alice", job.id);
      console.log(`usage: ${JSON.stringify(usage)}`);
      assert.equal(exitCode, 0);
      assert.ok(usage.ioWriteBytes >= 4 * MIB, `wrote ${usage.ioWriteBytes}`);
      assert.ok(usage.ioReadBytes >= 2 * MIB, `read ${usage.ioReadBytes}`);
      assert.ok(
        usage.memoryPeakBytes >= 20 * MIB,
        `peak ${usage.memoryPeakBytes}`,
      );
      assert.ok(usage.cpuUsec >= 10_000, `cpu ${usage.cpuUsec} µs`);
      assert.deepEqual(await cgroups.list(), []);
    }, { runAs: [{ owner: "alice", logins: ["root"] }] });
  },
});

Deno.test({
  name:
    "v2 engine: OOM-killed comes from memory.events, not from exit code 137",
  ignore: !inVm,
  async fn() {
    await withEngine(async (engine) => {
      const limits = { memoryBytes: 32 * MIB };
      const hog = await engine.start("alice", {
        command: "sh",
        args: ["-c", "head -c 200M /dev/zero | tail"],
        limits,
      });
      const fake = await engine.start("alice", {
        command: "sh",
        args: ["-c", "exit 137"],
        limits,
      });
      await collect(engine.logs("alice", hog.id, { follow: true }));
      await collect(engine.logs("alice", fake.id, { follow: true }));
      const hogInfo = await engine.status("alice", hog.id);
      const fakeInfo = await engine.status("alice", fake.id);
      assert.equal(hogInfo.oomKilled, true);
      assert.ok(hogInfo.usage.memoryPeakBytes <= 32 * MIB);
      assert.equal(fakeInfo.exitCode, 137);
      assert.equal(fakeInfo.oomKilled, false);
    });
  },
});

Deno.test({
  name:
    "v2 engine: stop sends SIGTERM, waits the grace, then kills every process and removes the cgroup",
  ignore: !inVm,
  async fn() {
    await withEngine(async (engine, { cgroups }) => {
      const job = await engine.start("alice", {
        command: "sh",
        args: [
          "-c",
          // The main shell notes SIGTERM and carries on (wait returns at
          // once for a trapped signal); a double-forked grandchild in its
          // own session ignores it.
          `trap 'echo got TERM' TERM
           ( setsid sh -c 'trap "" TERM; echo grandchild $$; exec sleep 1000' & )
           echo main $$
           while :; do sleep 1000 & wait $!; done`,
        ],
      });
      const pids = async () =>
        [
          ...text(await collect(engine.logs("alice", job.id))).matchAll(
            /(?:main|grandchild) (\d+)/g,
          ),
        ].map((m) => Number(m[1]));
      await waitFor("both processes", async () => (await pids()).length === 2);
      const [name] = await cgroups.list();
      assert.ok(name, "the job has no cgroup");
      const dir = cgroups.open(name).procsFiles[0].replace(
        /\/cgroup\.procs$/,
        "",
      );

      const info = await engine.stop("alice", job.id, { graceMs: 1000 });
      assert.equal(info.stopped, true);
      assert.equal(info.signal, "SIGKILL");
      const output = text(await collect(engine.logs("alice", job.id)));
      assert.match(output, /got TERM/, "SIGTERM came before the kill");
      for (const pid of await pids()) {
        assert.ok(!isAlive(pid), `pid ${pid} survived the stop`);
      }
      assert.deepEqual(await cgroups.list(), []);
      await assert.rejects(access(dir), { code: "ENOENT" });
    });
  },
});

Deno.test({
  name:
    "v2 engine: a limit whose controller the job cgroups lack is failed_precondition, not internal",
  ignore: !inVm,
  async fn() {
    // An operator's --cgroup-parent below a cgroup that passes on only
    // memory and pids: CPU limits cannot be enforced there.
    const slice = `/sys/fs/cgroup/nocpu-${Deno.pid}`;
    await Deno.mkdir(slice);
    try {
      await Deno.writeTextFile(
        `${slice}/cgroup.subtree_control`,
        "+memory +pids",
      );
      const cgroups = await detectDriver({ parent: `/nocpu-${Deno.pid}/jobs` });
      const dataDir = await Deno.makeTempDir({
        prefix: "telejob-engine-test-",
      });
      const engine = await JobEngine.open({ dataDir, cgroups });
      try {
        await assert.rejects(
          engine.start("alice", { command: "true", limits: { cpu: 0.5 } }),
          (error: unknown) =>
            error instanceof JobError && error.code === "failed_precondition" &&
            /cannot enforce a CPU limit: the cgroup v2 cpu controller/.test(
              error.message,
            ),
        );
        const ok = await engine.start("alice", {
          command: "true",
          limits: { pids: 8 },
        });
        await collect(engine.logs("alice", ok.id, { follow: true }));
        assert.equal((await engine.status("alice", ok.id)).exitCode, 0);
      } finally {
        await engine.shutdown({ graceMs: 0 });
        await Deno.remove(dataDir, { recursive: true });
      }
      // The server's own limits needing it: refused at start-up instead.
      await assert.rejects(
        detectDriver({ parent: `/nocpu-${Deno.pid}/jobs`, limits: { cpu: 1 } }),
        /The server's --cpu-limit needs the cpu controller, but .*\/jobs\/cgroup\.subtree_control does not enable it/,
      );
    } finally {
      await Deno.remove(`${slice}/jobs`).catch(() => {});
      await Deno.remove(slice);
    }
  },
});
