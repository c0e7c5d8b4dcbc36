/**
 * Proves the VM that `tests/vm/run.sh` boots is what the cgroup v2 suite
 * relies on: a pure v2 hierarchy with the job controllers enabled at the
 * root, a block device for the io.max test, and cpu.max that really
 * throttles. Written against the kernel files directly, so a failure here
 * points at the harness, not at the driver.
 *
 * Only runs inside the VM (`TELEJOB_VM=1`, set by tests/vm/init.sh): the host
 * has a hybrid layout, and the test writes at the root of the hierarchy.
 * @module
 */

import assert from "node:assert/strict";
import { mkdir, readFile, rmdir, stat, writeFile } from "node:fs/promises";

const inVm = Deno.env.get("TELEJOB_VM") === "1";
const root = "/sys/fs/cgroup";

Deno.test({
  name: "vm: pure cgroup v2 with cpu, io, memory and pids for job cgroups",
  ignore: !inVm,
  async fn() {
    const mounts = await readFile("/proc/self/mounts", "utf8");
    const cgroupMounts = mounts.split("\n").filter((l) => / cgroup2? /.test(l));
    assert.deepEqual(
      cgroupMounts.map((l) => l.split(" ").slice(1, 4).join(" ")),
      [`${root} cgroup2 rw,relatime,nsdelegate`],
    );
    assert.equal(await readFile("/proc/self/cgroup", "utf8"), "0::/\n");
    const enabled = (await readFile(`${root}/cgroup.subtree_control`, "utf8"))
      .trim().split(" ");
    assert.deepEqual(enabled.sort(), ["cpu", "io", "memory", "pids"]);
  },
});

Deno.test({
  name: "vm: TELEJOB_TEST_BLOCK_DEVICE is a block device",
  ignore: !inVm,
  async fn() {
    const device = Deno.env.get("TELEJOB_TEST_BLOCK_DEVICE");
    assert.ok(device, "TELEJOB_TEST_BLOCK_DEVICE is not set");
    assert.ok(
      (await stat(device)).isBlockDevice(),
      `${device} is no block device`,
    );
  },
});

/** Share of one CPU a busy loop gets over `ms` in a fresh cgroup with `cpuMax`. */
async function busyLoopShare(
  name: string,
  cpuMax: string,
  ms: number,
): Promise<number> {
  const dir = `${root}/${name}`;
  await mkdir(dir);
  try {
    await writeFile(`${dir}/cpu.max`, cpuMax);
    // The child joins the cgroup itself before it starts spinning.
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'echo 0 > "$1/cgroup.procs" && exec sh -c "while :; do :; done"',
        "sh",
        dir,
      ],
      stdin: "null",
    }).spawn();
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    const cpuStat = await readFile(`${dir}/cpu.stat`, "utf8");
    const usageUsec = Number(/^usage_usec (\d+)$/m.exec(cpuStat)?.[1]);
    return usageUsec / (ms * 1000);
  } finally {
    await rmdir(dir);
  }
}

Deno.test({
  name: "vm: cpu.max 20000 100000 holds a busy loop near 20% of a CPU",
  ignore: !inVm,
  async fn() {
    const limited = await busyLoopShare(
      "telejob-harness-limited",
      "20000 100000",
      2000,
    );
    const control = await busyLoopShare(
      "telejob-harness-control",
      "max 100000",
      2000,
    );
    console.log(
      `busy loop: ${(limited * 100).toFixed(1)}% limited, ${
        (control * 100).toFixed(1)
      }% control`,
    );
    assert.ok(limited <= 0.25, `limited loop used ${limited} of a CPU`);
    assert.ok(control >= 0.5, `control loop used only ${control} of a CPU`);
  },
});
